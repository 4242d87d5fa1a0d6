// An outside gRPC client that knows nothing of hosting's .proto files: it learns the API from
// hostd's server reflection (as grpcurl does) and calls it. Used by the integration tests.
//
//   node reflection_client.mjs HOST:PORT services
//   node reflection_client.mjs HOST:PORT call hosting.v1.ServiceManager ApplyService '{"spec":{...}}'
//
// Sends $HOSTCTL_TOKEN as "authorization: Bearer <token>" on every call (reflection too) when
// it is set. Prints the response as JSON on stdout; on an RPC error prints
// {"code":N,"details":"..."} and exits 3.
import grpc from '@grpc/grpc-js';
import reflection from 'grpc-js-reflection-client';

const { GrpcReflection } = reflection;
const [host, mode, ...rest] = process.argv.slice(2);
if (!host || !mode) {
  console.error('usage: reflection_client.mjs HOST:PORT services | call SERVICE METHOD JSON');
  process.exit(2);
}
const creds = grpc.ChannelCredentials.createInsecure();
const metadata = new grpc.Metadata();
if (process.env.HOSTCTL_TOKEN) metadata.set('authorization', `Bearer ${process.env.HOSTCTL_TOKEN}`);
// gRPC 1.51 serves reflection v1alpha only, as grpcurl's fallback does.
const client = new GrpcReflection(host, creds, {}, 'v1alpha');

try {
  if (mode === 'services') {
    console.log(JSON.stringify(await client.listServices('*', metadata)));
  } else if (mode === 'call') {
    const [service, method, body] = rest;
    const descriptor = await client.getDescriptorBySymbol(service, metadata);
    const pkg = descriptor.getPackageObject({ keepCase: true, longs: String, enums: String, defaults: false });
    const Ctor = service.split('.').reduce((o, k) => o[k], pkg);
    if (!Ctor) throw new Error(`reflection did not describe ${service}`);
    const stub = new Ctor(host, creds);
    const response = await new Promise((resolve, reject) => {
      stub[method](JSON.parse(body || '{}'), metadata, { deadline: Date.now() + 20000 }, (err, res) =>
        (err ? reject(err) : resolve(res)));
    });
    console.log(JSON.stringify(response));
  } else {
    console.error(`unknown mode ${mode}`);
    process.exit(2);
  }
  process.exit(0);
} catch (e) {
  if (typeof e.code === 'number') {
    console.log(JSON.stringify({ code: e.code, details: e.details }));
    process.exit(3);
  }
  console.error(e.stack || String(e));
  process.exit(1);
}
