#!/usr/bin/env node
// Generates shim/proto/generated/ (TypeScript types of every CRI message and
// service) from shim/proto/api.proto, the CRI runtime.v1 API as published by
// kubernetes/cri-api (copied from ../shared/spec/cri with its LICENSE and
// SOURCE). The server loads the .proto itself at run time with
// @grpc/proto-loader; these types only check our code against it.
// Run with `node scripts/gen-cri.js` after api.proto changes; the output is
// committed so that a fresh clone builds without ../shared.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'shim', 'proto', 'generated');
fs.rmSync(out, { recursive: true, force: true });
execFileSync(path.join(root, 'node_modules', '.bin', 'proto-loader-gen-types'), [
  '--longs=String', '--enums=Number', '--defaults', '--oneofs', '--keepCase',
  '--grpcLib=@grpc/grpc-js', '--outDir', out, path.join(root, 'shim', 'proto', 'api.proto'),
], { stdio: 'inherit' });
