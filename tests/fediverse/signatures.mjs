// Fedify (npm @fedify/fedify) signing and verifying HTTP requests, for the tests to check syndicate against
// an implementation that is not its own. Reads one JSON job on stdin, writes one JSON answer on stdout.
//   {"do": "sign", "spec": "draft-cavage-http-signatures-12" | "rfc9421", "method", "url", "headers", "body",
//    "privateKeyPem", "keyId"}                       -> {"headers": {...}}
//   {"do": "verify", "method", "url", "headers", "body", "publicKeyPem", "keyId", "actorId", "now"}
//                                                    -> {"verified": true | false}
//   {"do": "parse", "json": activity}                -> {"type", "object", "name", "url", "actor"} as Fedify reads it
// Fedify is installed by .ci/run into .ci/node (SYNDICATE_NODE_MODULES names another node_modules folder).
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const modules = process.env.SYNDICATE_NODE_MODULES;
const entry = createRequire(modules + "/").resolve("@fedify/fedify");  // its CommonJS build has the same API
const { signRequest, verifyRequest } = await import(pathToFileURL(entry).href);
const vocab = createRequire(entry).resolve("@fedify/vocab");  // Fedify's ActivityStreams vocabulary
const { Activity } = await import(pathToFileURL(vocab).href);

const job = JSON.parse(await new Promise((done) => {
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk)).on("end", () => done(text));
}));

function der(pem) {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
}

const request = job.url ? new Request(job.url, {
  method: job.method,
  headers: job.headers,
  body: job.method === "GET" ? undefined : job.body,
}) : null;

if (job.do === "parse") {
  // Fedify's own reading of an activity (its vocabulary, its bundled JSON-LD contexts): what it sees in it.
  const activity = await Activity.fromJsonLd(job.json);
  const object = await activity.getObject();
  console.log(JSON.stringify({
    type: activity.constructor.name,
    object: object ? object.constructor.name : null,
    ...(object && object.name ? { name: object.name.toString() } : {}),
    ...(object && object.url ? { url: object.url.href } : {}),
    actor: activity.actorId ? activity.actorId.href : null,
  }));
} else if (job.do === "sign") {
  const key = await crypto.subtle.importKey("pkcs8", der(job.privateKeyPem),
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, true, ["sign"]);
  const signed = await signRequest(request, key, new URL(job.keyId), { spec: job.spec });
  console.log(JSON.stringify({ headers: Object.fromEntries(signed.headers.entries()) }));
} else {
  const actor = {
    "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
    id: job.actorId,
    type: "Organization",
    inbox: job.actorId + "/inbox",
    publicKey: { id: job.keyId, owner: job.actorId, publicKeyPem: job.publicKeyPem },
  };
  const documentLoader = async (url) => ({ contextUrl: null, document: actor, documentUrl: job.actorId });
  const options = { documentLoader };
  if (job.now) options.currentTime = Temporal.Instant.from(job.now);
  const key = await verifyRequest(request, options);
  console.log(JSON.stringify({ verified: key !== null, keyId: key ? key.id?.href : null }));
}
