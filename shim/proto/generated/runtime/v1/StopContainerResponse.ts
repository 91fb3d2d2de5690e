// Original file: /work/main/shim/proto/api.proto


export interface StopContainerResponse {
}

export interface StopContainerResponse__Output {
}
