// An OPC UA server built on node-opcua (an OPC UA stack independent of asyncua) for the edge tests.
// Usage: node nodeopcua_server.js <spec.json>; node-opcua is found through NODE_PATH (build/node-opcua).
// The spec (written by tests/edge/sources/nodeopcua.py) gives the port, the PKI folder, the server
// certificate and key, the client certificates to trust and the variables to serve in namespace
// urn:nodeopcua:plant; the server offers an anonymous endpoint (None) and a secured one
// (Basic256Sha256, SignAndEncrypt) and prints "ready <endpoint url>" once it listens.
"use strict";
const fs = require("fs");
const {
  OPCUAServer,
  OPCUACertificateManager,
  DataType,
  Variant,
  VariantArrayType,
  SecurityPolicy,
  MessageSecurityMode,
  coerceInt64,
  coerceUInt64,
} = require("node-opcua");

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));

function variant(v) {
  const dataType = DataType[v.type];
  if (dataType === undefined) throw new Error(`unknown data type ${v.type}`);
  const scalar = (x) => {
    if (v.type === "Int64") return coerceInt64(String(x)); // [high, low]; the spec gives 64-bit values as text
    if (v.type === "UInt64") return coerceUInt64(String(x));
    if (v.type === "DateTime") return new Date(x);
    return x;
  };
  if (Array.isArray(v.value)) {
    return new Variant({ dataType, arrayType: VariantArrayType.Array, value: v.value.map(scalar) });
  }
  return new Variant({ dataType, arrayType: VariantArrayType.Scalar, value: scalar(v.value) });
}

async function main() {
  const certificateManager = new OPCUACertificateManager({
    rootFolder: spec.pki,
    automaticallyAcceptUnknownCertificate: false,
  });
  await certificateManager.initialize();
  for (const file of spec.trusted_clients) {
    await certificateManager.trustCertificate(fs.readFileSync(file));
  }
  const server = new OPCUAServer({
    port: spec.port,
    hostname: "127.0.0.1",
    resourcePath: "/plant",
    certificateFile: spec.cert,
    privateKeyFile: spec.key,
    serverCertificateManager: certificateManager,
    securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256],
    securityModes: [MessageSecurityMode.None, MessageSecurityMode.SignAndEncrypt],
    allowAnonymous: true,
    serverInfo: { applicationUri: spec.application_uri, productUri: "urn:nodeopcua:test-plant" },
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace;
  const ns = addressSpace.getOwnNamespace();
  const plant = addressSpace.registerNamespace(spec.namespace);
  void ns;
  const line = plant.addObject({
    organizedBy: addressSpace.rootFolder.objects,
    browseName: "Line1",
    nodeId: "s=Line1",
  });
  const counter = { value: 0 };
  for (const v of spec.variables) {
    const node = plant.addVariable({
      componentOf: line,
      browseName: v.name,
      nodeId: `s=Line1.${v.name}`,
      dataType: v.type,
      valueRank: Array.isArray(v.value) ? 1 : -1,
    });
    if (v.name === spec.counter) {
      node.setValueFromSource(new Variant({ dataType: DataType.UInt32, value: 0 }));
      setInterval(() => {
        counter.value += 1;
        node.setValueFromSource(new Variant({ dataType: DataType.UInt32, value: counter.value }));
      }, spec.counter_interval_ms);
    } else {
      node.setValueFromSource(variant(v));
    }
  }
  await server.start();
  process.stdout.write(`ready ${server.getEndpointUrl()}\n`);
  const shutdown = async () => {
    setTimeout(() => process.exit(0), 1000).unref(); // sessions still open must not hold a restart up
    await server.shutdown(0);
    process.exit(0);
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

main().catch((err) => {
  process.stderr.write(`node-opcua test server failed: ${err.stack || err}\n`);
  process.exit(1);
});
