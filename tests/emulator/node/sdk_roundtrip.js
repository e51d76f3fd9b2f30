// Drives Tencent's Node.js SDK (tencentcloud-sdk-nodejs-mps) against the MPS emulator.
//
// Reads {"port", "secretId", "secretKey", "prompt"} as JSON on stdin (the key stays out of `ps`),
// then: creates a task, describes it until DONE, downloads its first image, and provokes three
// errors (a wrong SecretKey, an unknown TaskId, a 1001-character prompt).  Prints one JSON
// document on stdout; tests/emulator/test_nodejs_sdk.py asserts on it.
"use strict";

const http = require("http");
const tencentcloud = require("tencentcloud-sdk-nodejs-mps");

const MpsClient = tencentcloud.mps.v20190612.Client;

// The SDK takes the service name from the endpoint's first label, so the endpoint must start
// with `mps.`; this agent resolves every name it is asked for to loopback, where the emulator is.
const agent = new http.Agent({
  keepAlive: true,
  lookup(hostname, options, callback) {
    if (options && options.all) {
      callback(null, [{ address: "127.0.0.1", family: 4 }]);
    } else {
      callback(null, "127.0.0.1", 4);
    }
  },
});

function client(config, secretKey) {
  return new MpsClient({
    credential: { secretId: config.secretId, secretKey },
    region: "ap-guangzhou",
    profile: {
      httpProfile: { protocol: "http://", endpoint: `mps.localhost:${config.port}`, reqTimeout: 10, agent },
    },
  });
}

function withoutRequestId(response) {
  const { RequestId, ...rest } = response;
  return rest;
}

async function errorOf(call) {
  try {
    await call();
  } catch (error) {
    return { code: error.code || null, message: error.message };
  }
  return { code: null, message: "the call succeeded" };
}

function download(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: response.statusCode,
            contentType: response.headers["content-type"],
            length: body.length,
            pngSignature: body.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10])),
          });
        });
      })
      .on("error", reject);
  });
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function main() {
  const config = await readStdin();
  const mps = client(config, config.secretKey);

  const created = await mps.CreateAigcImageTask({ ModelName: "GEM", Prompt: config.prompt });
  const deadline = Date.now() + 20000;
  let described = withoutRequestId(await mps.DescribeAigcImageTask({ TaskId: created.TaskId }));
  while (described.Status !== "DONE" && described.Status !== "FAIL" && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    described = withoutRequestId(await mps.DescribeAigcImageTask({ TaskId: created.TaskId }));
  }
  const image = described.Status === "DONE" ? await download(described.ImageUrls[0]) : null;

  const wrongKey = await errorOf(() =>
    client(config, "not-the-secret-key").CreateAigcImageTask({ ModelName: "GEM", Prompt: config.prompt }),
  );
  const unknownTask = await errorOf(() => mps.DescribeAigcImageTask({ TaskId: "1-AigcImage-does-not-exist" }));
  const longPrompt = await errorOf(() => mps.CreateAigcImageTask({ ModelName: "GEM", Prompt: "x".repeat(1001) }));

  agent.destroy();
  process.stdout.write(
    JSON.stringify({ taskId: created.TaskId, described, image, errors: { wrongKey, unknownTask, longPrompt } }),
  );
}

main().catch((error) => {
  process.stderr.write(`${error.code || ""} ${error.stack || error}\n`);
  process.exit(1);
});
