// The agent's conversations API through the official @inconvoai/node SDK against a live
// dataloft server whose default agent already holds seed 000's data (see
// tests/e2e/test_agent_sdks.py). Env: BASE_URL, API_KEY. One JSON line per step.

import assert from "node:assert/strict";

import Inconvo from "@inconvoai/node";

const BASE_URL = process.env.BASE_URL;
const API_KEY = process.env.API_KEY;
const client = new Inconvo({ apiKey: API_KEY, baseURL: `${BASE_URL}/api/v1`, maxRetries: 0 });
const PRICE_Q = "What's the price for the Enterprise plan?";

let current = "start";
async function step(name, fn) {
  current = name;
  const extra = await fn();
  console.log(JSON.stringify({ step: name, ok: true, ...(extra ?? {}) }));
}

try {
  const listed = await client.get("/assistant/list");
  const agentId = listed.items.find((a) => a.default === true).id;
  const conv = {};

  await step("conversations.create", async () => {
    const made = await client.agents.conversations.create(agentId, {
      userIdentifier: "user_123", userContext: { orgId: "org_456" } });
    assert.match(made.id, /^conv_/);
    conv.inside = made.id;
    const other = await client.agents.conversations.create(agentId, {
      userIdentifier: "user_123", userContext: { orgId: "org_456" } });
    conv.second = other.id;
    const outside = await client.agents.conversations.create(agentId, {
      userIdentifier: "user_999", userContext: { orgId: "org_789" } });
    conv.outside = outside.id;
  });

  await step("conversations.list paged", async () => {
    const ids = [];
    for await (const c of client.agents.conversations.list(agentId, {
      limit: 1, userIdentifier: "user_123", userContext: { orgId: "org_456" } })) {
      assert.equal(c.userIdentifier, "user_123");
      ids.push(c.id);
    }
    assert.ok(ids.includes(conv.inside) && ids.includes(conv.second), JSON.stringify(ids));
    assert.equal(new Set(ids).size, ids.length);
    return { count: ids.length };
  });

  await step("response.create whole", async () => {
    const r = await client.agents.conversations.response.create(conv.inside, {
      agentId, message: PRICE_Q });
    assert.equal(r.conversationId, conv.inside);
    assert.ok(r.message.includes("1299"), r.message);
    conv.response = r.id;
  });

  await step("response.create streamed", async () => {
    const stream = await client.agents.conversations.response.create(conv.second, {
      agentId, message: PRICE_Q, stream: true });
    const events = [];
    for await (const event of stream) events.push(event);
    assert.equal(events[0].type, "response.created");
    const done = events[events.length - 1];
    assert.equal(done.type, "response.completed", JSON.stringify(events));
    assert.ok(done.response.message.includes("1299"), done.response.message);
    return { events: events.map((e) => e.type) };
  });

  await step("response.retrieve with trace", async () => {
    const r = await client.agents.conversations.response.retrieve(conv.response, {
      agentId, conversation_id: conv.inside });
    assert.equal(r.input.message, PRICE_Q);
    assert.equal(r.trace[0].name, "search");
    assert.ok(JSON.stringify(r.trace[0].output).includes("1299"));
  });

  await step("conversations.retrieve", async () => {
    const c = await client.agents.conversations.retrieve(conv.inside, { agentId });
    assert.equal(c.messages.length, 2);
    assert.equal(c.messages[1].id, conv.response);
  });

  await step("feedback create/update", async () => {
    const fb = await client.agents.conversations.response.feedback.create(conv.response, {
      agentId, convo_id: conv.inside, rating: "positive" });
    assert.equal(fb.rating, "positive");
    const up = await client.agents.conversations.response.feedback.update(fb.id, {
      agentId, convo_id: conv.inside,
      response_id: conv.response, rating: "negative", comment: "meh" });
    assert.equal(up.rating, "negative");
    assert.equal(up.comment, "meh");
  });

  await step("dataSummary.retrieve", async () => {
    const s = await client.agents.dataSummary.retrieve(agentId);
    assert.equal(typeof s.dataSummary, "string");
  });

  await step("outsider sees nothing", async () => {
    const r = await client.agents.conversations.response.create(conv.outside, {
      agentId, message: PRICE_Q });
    assert.ok(!JSON.stringify(r).includes("1299"), JSON.stringify(r));
  });

  console.log(JSON.stringify({ step: "done", ok: true }));
} catch (err) {
  console.log(JSON.stringify({ step: current, ok: false, error: String(err?.stack ?? err) }));
  process.exit(1);
}
