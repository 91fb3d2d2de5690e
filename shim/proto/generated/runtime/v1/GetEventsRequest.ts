// Original file: /work/main/shim/proto/api.proto


export interface GetEventsRequest {
}

export interface GetEventsRequest__Output {
}
