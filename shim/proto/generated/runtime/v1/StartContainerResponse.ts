// Original file: /work/main/shim/proto/api.proto


export interface StartContainerResponse {
}

export interface StartContainerResponse__Output {
}
