// Original file: /work/main/shim/proto/api.proto


export interface CheckpointPodResponse {
}

export interface CheckpointPodResponse__Output {
}
