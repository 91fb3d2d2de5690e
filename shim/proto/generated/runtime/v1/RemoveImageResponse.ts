// Original file: /work/main/shim/proto/api.proto


export interface RemoveImageResponse {
}

export interface RemoveImageResponse__Output {
}
