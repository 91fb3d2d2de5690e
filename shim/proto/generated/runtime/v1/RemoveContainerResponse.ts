// Original file: /work/main/shim/proto/api.proto


export interface RemoveContainerResponse {
}

export interface RemoveContainerResponse__Output {
}
