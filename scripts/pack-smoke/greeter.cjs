// The gRPC service every pack-smoke app calls: unary /smoke.Greeter/SayHello, coded as JSON so the
// apps need no protobuf. CommonJS, so the ESM and the CommonJS apps load the same file.
'use strict';

const json = {
  serialize: (value) => Buffer.from(JSON.stringify(value)),
  deserialize: (buf) => JSON.parse(buf.toString()),
};

const greeter = {
  sayHello: {
    path: '/smoke.Greeter/SayHello',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

module.exports = { json, greeter };
