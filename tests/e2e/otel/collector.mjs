#!/usr/bin/env node
// A test OpenTelemetry collector: OTLP/gRPC (TraceService.Export) and
// OTLP/HTTP (POST /v1/traces, protobuf) on loopback. What it receives is
// decoded by the official OpenTelemetry JS packages' OTLP protobuf definitions
// (@opentelemetry/otlp-transformer's generated root, pinned in package.json),
// not by a2a-mesh's own protos, and printed as one JSON object per span:
//   {"listening":{"grpc":PORT,"http":PORT}}           first, once serving
//   {"span":{"traceId":hex,"spanId":hex,"parentSpanId":hex,"name":..,"kind":"SPAN_KIND_SERVER",
//            "attributes":{k:v},"events":[..],"status":{..},"flags":N,"traceState":..,
//            "start":ns,"end":ns},"resource":{k:v},"scope":name,"via":"grpc"|"http","headers":{..}}
// (A test holds the collector still with SIGSTOP.)
// Usage: node collector.mjs
import { createRequire } from 'node:module';
import http from 'node:http';
import grpc from '@grpc/grpc-js';

const require = createRequire(import.meta.url);
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');
const { ExportTraceServiceRequest, ExportTraceServiceResponse } =
  root.opentelemetry.proto.collector.trace.v1;

const hex = (bytes) => Buffer.from(bytes ?? []).toString('hex');
const value = (any) => {
  if (any == null) return null;
  for (const key of ['stringValue', 'boolValue', 'intValue', 'doubleValue']) {
    if (any[key] !== undefined && any[key] !== null) return key === 'intValue' ? Number(any[key]) : any[key];
  }
  return null;
};
const attributes = (list) => Object.fromEntries((list ?? []).map((kv) => [kv.key, value(kv.value)]));

function print(request, via, headers) {
  const decoded = ExportTraceServiceRequest.toObject(request, { longs: String, enums: String, defaults: true });
  for (const resourceSpans of decoded.resourceSpans ?? []) {
    const resource = attributes(resourceSpans.resource?.attributes);
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        console.log(JSON.stringify({
          span: {
            traceId: hex(span.traceId),
            spanId: hex(span.spanId),
            parentSpanId: hex(span.parentSpanId),
            traceState: span.traceState,
            flags: span.flags,
            name: span.name,
            kind: span.kind,
            start: span.startTimeUnixNano,
            end: span.endTimeUnixNano,
            attributes: attributes(span.attributes),
            events: (span.events ?? []).map((e) => ({ name: e.name, attributes: attributes(e.attributes) })),
            status: { code: span.status?.code, message: span.status?.message },
          },
          resource,
          scope: scopeSpans.scope?.name,
          via,
          headers,
        }));
      }
    }
  }
}

const server = new grpc.Server();
server.addService(
  {
    Export: {
      path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      requestStream: false,
      responseStream: false,
      requestSerialize: (m) => Buffer.from(ExportTraceServiceRequest.encode(m).finish()),
      requestDeserialize: (b) => ExportTraceServiceRequest.decode(b),
      responseSerialize: (m) => Buffer.from(ExportTraceServiceResponse.encode(m).finish()),
      responseDeserialize: (b) => ExportTraceServiceResponse.decode(b),
    },
  },
  {
    Export: (call, callback) => {
      const auth = call.metadata.get('authorization');
      print(call.request, 'grpc', auth.length ? { authorization: String(auth[0]) } : {});
      callback(null, ExportTraceServiceResponse.create({}));
    },
  }
);

const httpServer = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method !== 'POST' || req.url !== '/v1/traces' ||
        req.headers['content-type'] !== 'application/x-protobuf') {
      res.writeHead(404).end();
      return;
    }
    print(ExportTraceServiceRequest.decode(Buffer.concat(chunks)), 'http',
          req.headers.authorization ? { authorization: req.headers.authorization } : {});
    res.writeHead(200, { 'content-type': 'application/x-protobuf' });
    res.end(Buffer.from(ExportTraceServiceResponse.encode({}).finish()));
  });
});

server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, grpcPort) => {
  if (error) {
    console.error(error);
    process.exit(1);
  }
  httpServer.listen(0, '127.0.0.1', () => {
    console.log(JSON.stringify({ listening: { grpc: grpcPort, http: httpServer.address().port } }));
  });
});
process.on('SIGTERM', () => process.exit(0));
