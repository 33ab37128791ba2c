// The Inconvo datasets seed examples (seeds 000 and 001) run through the official
// @inconvoai/node SDK against a live dataloft server.
//
// Env: BASE_URL (server root), API_KEY. Prints one JSON line per step, {"step", "ok", ...};
// exits 1 on the first failed assertion, after printing {"step": <name>, "ok": false, ...}.
//
// @inconvoai/node 0.5.0 has no agent-less `client.datasets` resource (the seeds' examples
// call `client.datasets.user.upload({userIdentifier, file, notes})`); its datasets live
// under `client.agents.datasets.{user,context}` and need an agentId. So the seeds'
// examples run twice: through the SDK's resources on the org's default agent (the agentId
// from GET /assistant/list), and at the seeds' own agent-less paths through the SDK's
// generic `client.post/get/delete` (same transport, auth and error mapping).

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import Inconvo, { toFile } from "@inconvoai/node";

const BASE_URL = process.env.BASE_URL;
const API_KEY = process.env.API_KEY;
if (!BASE_URL || !API_KEY) {
  console.error("BASE_URL and API_KEY must be set");
  process.exit(2);
}

const client = new Inconvo({ apiKey: API_KEY, baseURL: `${BASE_URL}/api/v1`, maxRetries: 0 });
const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "inconvo-seed-"));

const SALES = "region,quarter,amount\nnorth,Q4,2048\nsouth,Q4,1024\n";
const PRICING = "plan,price\nStarter,10\nEnterprise,990\n";
const TARGETS = '[{"region": "north", "target": 3000}]';

let current = "start";
function report(step, extra = {}) {
  console.log(JSON.stringify({ step, ok: true, ...extra }));
}
async function step(name, fn) {
  current = name;
  const extra = await fn();
  report(name, extra ?? {});
}

function writeFixture(name, text) {
  const full = path.join(workdir, name);
  fs.writeFileSync(full, text);
  return full;
}

// upload -> {file: {name, path, size}} and nothing else (error is optional in the SDK type)
function assertUploaded(result, name, scopePath, size, orgAgent) {
  assert.deepEqual(Object.keys(result).sort(), ["file"], JSON.stringify(result));
  assert.deepEqual(Object.keys(result.file).sort(), ["name", "path", "size"]);
  assert.equal(result.file.name, name);
  assert.equal(result.file.size, size);
  const m = /^(org_[0-9a-z]+)\/(agt_[0-9a-z]+)\/(.+)$/.exec(result.file.path);
  assert.ok(m, `path ${result.file.path} is not {orgId}/{agentId}/...`);
  assert.equal(m[2], orgAgent.agentId, "path names the agent");
  if (orgAgent.orgId) assert.equal(m[1], orgAgent.orgId, "path names the org");
  assert.equal(m[3], `${scopePath}/${name}`);
  return m[1];
}

async function expectStatus(promise, status, code) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof Inconvo.APIError, `expected an APIError, got ${err}`);
    assert.equal(err.status, status, JSON.stringify(err.error));
    assert.equal(typeof err.error?.message, "string", JSON.stringify(err.error));
    assert.equal(err.error?.code, code, JSON.stringify(err.error));
    return err;
  }
  assert.fail(`expected HTTP ${status}, the call succeeded`);
}

function multipart(fileName, text, notes) {
  const form = new FormData();
  form.append("file", new File([text], fileName, { type: "text/csv" }));
  if (notes !== undefined) form.append("notes", notes);
  return form;
}

async function main() {
  const sales = writeFixture("sales_data.csv", SALES);
  const pricing = writeFixture("company_pricing.csv", PRICING);
  const where = { agentId: null, orgId: null };

  await step("sdk surface", async () => {
    assert.equal(typeof client.agents.datasets.user.upload, "function");
    assert.equal(typeof client.agents.datasets.context.upload, "function");
    return { agentLessDatasetsResource: typeof client.datasets !== "undefined" };
  });

  await step("default agent", async () => {
    const listed = await client.get("/assistant/list");
    const defaults = listed.items.filter((a) => a.default === true);
    assert.equal(defaults.length, 1, JSON.stringify(listed));
    where.agentId = defaults[0].id;
    return { agentId: where.agentId };
  });
  const agentId = where.agentId;

  // --- seed 000: "Upload files that only a specific user can access" --------------------
  await step("user upload (fs.createReadStream)", async () => {
    const result = await client.agents.datasets.user.upload("user_123", {
      agentId,
      file: fs.createReadStream(sales),
      notes: "Q4 2024 sales report",
    });
    where.orgId = assertUploaded(result, "sales_data.csv", "userIdentifier/user_123",
                                 Buffer.byteLength(SALES), where);
    return { file: result.file };
  });

  await step("context upload (fs.createReadStream)", async () => {
    const result = await client.agents.datasets.context.upload("org_456", {
      agentId,
      contextKey: "orgId",
      file: fs.createReadStream(pricing),
      notes: "2024 pricing sheet",
    });
    assertUploaded(result, "company_pricing.csv", "userContext/orgId:org_456",
                   Buffer.byteLength(PRICING), where);
    return { file: result.file };
  });

  // The seed's server-side example: a buffer through toFile().
  await step("user upload (toFile buffer)", async () => {
    const result = await client.agents.datasets.user.upload("user_123", {
      agentId,
      file: await toFile(Buffer.from(TARGETS), "targets.json"),
      notes: "sales targets",
    });
    assertUploaded(result, "targets.json", "userIdentifier/user_123",
                   Buffer.byteLength(TARGETS), where);
  });

  await step("list both", async () => {
    const userFiles = await client.agents.datasets.user.list("user_123", { agentId });
    assert.deepEqual(userFiles, { files: ["sales_data.csv", "targets.json"] });
    const contextFiles = await client.agents.datasets.context.list("org_456", {
      agentId, contextKey: "orgId" });
    assert.deepEqual(contextFiles, { files: ["company_pricing.csv"] });
    return { userFiles, contextFiles };
  });

  await step("agent-less list sees the default agent's files", async () => {
    const userFiles = await client.get("/datasets/user/user_123");
    assert.deepEqual(userFiles, { files: ["sales_data.csv", "targets.json"] });
    const contextFiles = await client.get("/datasets/context/orgId/org_456");
    assert.deepEqual(contextFiles, { files: ["company_pricing.csv"] });
  });

  await step("refused upload maps to an SDK error", async () => {
    const pdf = await toFile(Buffer.from("%PDF-1.7\n1 0 obj\n"), "report.csv");
    await expectStatus(client.agents.datasets.user.upload("user_123", { agentId, file: pdf }),
                       415, "UNSUPPORTED_MEDIA_TYPE");
    const err = await expectStatus(client.agents.datasets.user.list("user_123",
                                                                    { agentId: "agt_nope" }),
                                   404, "NOT_FOUND");
    assert.ok(err instanceof Inconvo.NotFoundError);
    const listed = await client.agents.datasets.user.list("user_123", { agentId });
    assert.deepEqual(listed.files, ["sales_data.csv", "targets.json"]);
  });

  await step("delete both", async () => {
    const user = await client.agents.datasets.user.delete("sales_data.csv", {
      agentId, userIdentifier: "user_123" });
    assert.deepEqual(user, { file: "sales_data.csv", success: true });
    const user2 = await client.agents.datasets.user.delete("targets.json", {
      agentId, userIdentifier: "user_123" });
    assert.deepEqual(user2, { file: "targets.json", success: true });
    const context = await client.agents.datasets.context.delete("company_pricing.csv", {
      agentId, contextKey: "orgId", contextValue: "org_456" });
    assert.deepEqual(context, { file: "company_pricing.csv", success: true });
    return { user, context };
  });

  await step("lists are empty after delete", async () => {
    assert.deepEqual(await client.agents.datasets.user.list("user_123", { agentId }),
                     { files: [] });
    assert.deepEqual(await client.agents.datasets.context.list("org_456", {
      agentId, contextKey: "orgId" }), { files: [] });
    await expectStatus(client.agents.datasets.user.delete("sales_data.csv", {
      agentId, userIdentifier: "user_123" }), 404, "NOT_FOUND");
  });

  // --- the seeds' agent-less paths, through the SDK's transport ----------------------------
  await step("agent-less user upload", async () => {
    const result = await client.post("/datasets/user/user_123", {
      body: multipart("sales_report_q4.csv", SALES, "Q4 2024 sales data") });
    assertUploaded(result, "sales_report_q4.csv", "userIdentifier/user_123",
                   Buffer.byteLength(SALES), where);
    return { file: result.file };
  });

  await step("agent-less context upload", async () => {
    const result = await client.post("/datasets/context/orgId/org_456", {
      body: multipart("shared_pricing.csv", PRICING, "Company-wide pricing sheet") });
    assertUploaded(result, "shared_pricing.csv", "userContext/orgId:org_456",
                   Buffer.byteLength(PRICING), where);
    return { file: result.file };
  });

  await step("agent-less list both", async () => {
    assert.deepEqual(await client.get("/datasets/user/user_123"),
                     { files: ["sales_report_q4.csv"] });
    assert.deepEqual(await client.get("/datasets/context/orgId/org_456"),
                     { files: ["shared_pricing.csv"] });
    // the same files, seen through the SDK's agent resources on the default agent
    assert.deepEqual(await client.agents.datasets.user.list("user_123", { agentId }),
                     { files: ["sales_report_q4.csv"] });
  });

  await step("agent-less delete both", async () => {
    assert.deepEqual(await client.delete("/datasets/user/user_123/sales_report_q4.csv"),
                     { file: "sales_report_q4.csv", success: true });
    assert.deepEqual(await client.delete("/datasets/context/orgId/org_456/shared_pricing.csv"),
                     { file: "shared_pricing.csv", success: true });
    assert.deepEqual(await client.get("/datasets/user/user_123"), { files: [] });
    assert.deepEqual(await client.get("/datasets/context/orgId/org_456"), { files: [] });
  });

  report("done");
}

main()
  .catch((err) => {
    const detail = err instanceof Inconvo.APIError
      ? { status: err.status, body: err.error }
      : { stack: String(err?.stack ?? err) };
    console.log(JSON.stringify({ step: current, ok: false, error: String(err?.message ?? err),
                                 ...detail }));
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(workdir, { recursive: true, force: true }));
