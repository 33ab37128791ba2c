#!/usr/bin/env node
// End-to-end lifecycle of a dataset and its files, driven only through the official
// @chatbotkit/sdk against a live dataloft server.
//
//   BASE_URL=http://127.0.0.1:8000 API_KEY=... node lifecycle.mjs
//
// Prints one JSON line per step ({"step", "ok", ...details}); exits 1 on the first failed
// assertion (after printing {"step", "ok": false, "error"}), 2 on bad configuration.
//
// The only request not made through the SDK is the diagnostic read of the dataset event log
// (GET /api/v1/dataset/{id}/event/list), used to fail fast when a sync fails and to explain
// a timeout.
//
// File count: the facts file + 13 more = 14 attached files; 5 of the 13 carry
// meta {category: 'docs'}, so a take=5 walk of the file list sees pages of 5, 5, 4.

import assert from 'node:assert/strict'

import { ChatBotKit, DatasetClient } from '@chatbotkit/sdk'

const BASE_URL = process.env.BASE_URL
const API_KEY = process.env.API_KEY
if (!BASE_URL || !API_KEY) {
  console.error('BASE_URL and API_KEY must be set')
  process.exit(2)
}

const SYNC_TIMEOUT_MS = Number(process.env.SYNC_TIMEOUT_MS || 60_000)
const SENTENCE = 'The lighthouse keeper painted the stairs cobalt blue in 1887.'
const QUERY = 'cobalt lighthouse stairs'
const EXTRA_FILES = 13
const READ_YOUR_WRITES_ROUNDS = 25
const DOCS_EVERY = 3 // extra files 0, 3, 6, 9, 12 are category 'docs'

// The default client, exactly as an SDK user would build it.
const cbk = new ChatBotKit({ secret: API_KEY, baseUrl: BASE_URL })

// A second dataset client through the SDK's public `fetchFn` option, which records the last
// raw response so that status and headers (Retry-After) can be checked. No retries.
let lastResponse = null
const observingFetch = async (url, init) => {
  const { timeout, retries, retryDelay, retryTimeout, ...rest } = init || {}
  const response = await fetch(url, rest)
  lastResponse = { url: String(url), status: response.status, headers: response.headers }
  return response
}
const observedDataset = new DatasetClient({
  secret: API_KEY,
  baseUrl: BASE_URL,
  fetchFn: observingFetch,
})

// --- harness ---------------------------------------------------------------------------------

let current = '(setup)'

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

async function step(name, fn) {
  current = name
  const started = Date.now()
  const result = await fn()
  emit({ step: name, ok: true, ms: Date.now() - started, ...(result || {}) })
  return result
}

function describeError(error) {
  return {
    name: error?.name,
    code: error?.code,
    message: error?.message,
    ...(error?.actual !== undefined ? { actual: error.actual } : {}),
    ...(error?.expected !== undefined ? { expected: error.expected } : {}),
  }
}

/** Await `promiseOrFn` and assert that it rejects with a FetchError carrying `code`. */
async function rejectsWithCode(promiseOrFn, code, what) {
  let error = null
  try {
    await (typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn)
  } catch (e) {
    error = e
  }
  assert.ok(error, `${what}: expected the SDK to throw ${code}, but the call succeeded`)
  assert.equal(error.name, 'FetchError', `${what}: expected a FetchError, got ${error?.name}: ${error?.message}`)
  assert.equal(error.code, code, `${what}: expected code ${code}, got ${error.code} (${error.message})`)
  assert.equal(typeof error.message, 'string')
  return error
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Plain-fetch read of the dataset event log (diagnostics only). */
async function datasetEvents(datasetId) {
  const response = await fetch(`${new URL(`/api/v1/dataset/${datasetId}/event/list?take=100`, BASE_URL)}`, {
    headers: { authorization: `Bearer ${API_KEY}` },
  })
  if (!response.ok) {
    return { error: `${response.status} ${await response.text()}` }
  }
  return (await response.json()).items
}

/** Every record of a dataset, following cursors through the SDK. */
async function allRecords(datasetId) {
  const out = []
  let cursor
  for (let i = 0; i < 1000; i++) {
    const page = await cbk.dataset.record.list(datasetId, { take: 100, ...(cursor ? { cursor } : {}) })
    assert.ok(Array.isArray(page.items), `record list: items must be an array, got ${JSON.stringify(page)}`)
    out.push(...page.items)
    cursor = page.cursor
    if (!cursor) return out
  }
  throw new Error('record list: more than 1000 pages')
}

function filler(n) {
  const topics = [
    'Harbour tides rise twice a day and the fishing boats leave before dawn to reach the outer banks.',
    'The village bakery opens at six and sells rye loaves, almond cakes and a sour cherry tart.',
    'Migrating geese cross the marsh every autumn, resting on the reed beds near the old mill.',
    'The railway reached the valley late, and the first station was a wooden shed beside the river.',
    'Winter storms often close the mountain pass, so supplies are stocked in the granary by October.',
    'The school choir practises on Thursdays and sings at the spring fair in the market square.',
  ]
  const para = []
  for (let i = 0; i < 5; i++) para.push(topics[(n + i) % topics.length])
  return para.join(' ')
}

function factsDocument() {
  const paragraphs = []
  for (let i = 0; i < 6; i++) paragraphs.push(filler(i))
  // The sentence opens its paragraph and is followed by ~300 characters, so the overlap
  // that a chunk carries into the next one never holds a partial copy of it.
  paragraphs.splice(3, 0, `${SENTENCE} Visitors still climb them today. ` +
    'The keeper kept a logbook of passing ships, noting the weather, the state of the sea ' +
    'and the hour the lamp was lit. His daughter later gave the logbooks to the town archive, ' +
    'where they are kept in a dry room beside the old harbour charts and the ledgers of the ferry.')
  return paragraphs.join('\n\n') + '\n'
}

/**
 * A Node Buffer holding exactly `text`, backed by its own ArrayBuffer.
 *
 * @chatbotkit/sdk 1.36.0 getBuffer() sends `buffer.buffer` (the whole backing ArrayBuffer,
 * ignoring byteOffset/byteLength). Small Buffers from Buffer.from(string) are slices of
 * Node's shared 8 KiB pool, so the SDK would announce and PUT 8192 bytes of pool memory.
 * Buffer.alloc() never uses the pool, so its .buffer is exactly its bytes.
 */
function exactBuffer(text) {
  const bytes = Buffer.alloc(Buffer.byteLength(text, 'utf8'))
  bytes.write(text, 'utf8')
  assert.equal(bytes.byteOffset, 0)
  assert.equal(bytes.buffer.byteLength, bytes.byteLength)
  return bytes
}

async function createAndUpload(name, text, meta) {
  const created = await cbk.file.create({ name, description: `e2e ${name}`, ...(meta ? { meta } : {}) })
  assert.equal(typeof created?.id, 'string', `file.create must return {id}, got ${JSON.stringify(created)}`)
  const uploaded = await cbk.file.upload(created.id, {
    data: exactBuffer(text),
    type: 'text/plain',
    name,
  })
  assert.deepEqual(uploaded, { id: created.id }, 'file.upload must resolve to {id}')
  return created.id
}

// --- the lifecycle ---------------------------------------------------------------------------

async function main() {
  const facts = factsDocument()
  const ctx = {}

  // Read-your-writes: an id the server has answered with must be usable by the very next
  // request. (Every later step depends on it; checked first so a failure names the cause.)
  await step('read-your-writes: create -> immediate fetch', async () => {
    const misses = []
    for (let i = 0; i < READ_YOUR_WRITES_ROUNDS; i++) {
      const file = await cbk.file.create({ name: `ryw-${i}.txt` })
      try {
        await cbk.file.fetch(file.id)
      } catch (e) {
        misses.push({ kind: 'file', id: file.id, code: e.code })
      }
      const dataset = await cbk.dataset.create({ name: `ryw-${i}` })
      try {
        await cbk.dataset.fetch(dataset.id)
      } catch (e) {
        misses.push({ kind: 'dataset', id: dataset.id, code: e.code })
      }
      await cbk.dataset.delete(dataset.id).catch(() => {})
      await cbk.file.delete(file.id).catch(() => {})
    }
    assert.deepEqual(misses, [],
      `${misses.length} of ${2 * READ_YOUR_WRITES_ROUNDS} resources answered by */create were ` +
      'not found by the next request: the write is committed after the response is sent')
    return { rounds: READ_YOUR_WRITES_ROUNDS }
  })

  await step('file.create', async () => {
    const created = await cbk.file.create({ name: 'facts.txt', description: 'lighthouse facts' })
    assert.equal(typeof created?.id, 'string', `expected {id}, got ${JSON.stringify(created)}`)
    ctx.factsId = created.id
    return { fileId: created.id }
  })

  await step('file.upload (direct-to-source)', async () => {
    const data = exactBuffer(facts)
    const uploaded = await cbk.file.upload(ctx.factsId, { data, type: 'text/plain', name: 'facts.txt' })
    assert.deepEqual(uploaded, { id: ctx.factsId })
    const fetched = await cbk.file.fetch(ctx.factsId)
    assert.equal(fetched.id, ctx.factsId)
    assert.equal(fetched.name, 'facts.txt')
    assert.equal(typeof fetched.createdAt, 'number', 'createdAt must be a number (ms)')
    assert.equal(typeof fetched.updatedAt, 'number', 'updatedAt must be a number (ms)')
    if (fetched.size !== undefined) assert.equal(fetched.size, data.byteLength, 'stored size')
    return { bytes: data.byteLength, fetched: { id: fetched.id, name: fetched.name, size: fetched.size, type: fetched.type } }
  })

  await step('dataset.create', async () => {
    const created = await cbk.dataset.create({ name: 'e2e lifecycle', description: 'SDK e2e' })
    assert.equal(typeof created?.id, 'string', `expected {id}, got ${JSON.stringify(created)}`)
    ctx.datasetId = created.id
    const fetched = await cbk.dataset.fetch(created.id)
    assert.equal(fetched.id, created.id)
    assert.equal(fetched.name, 'e2e lifecycle')
    return { datasetId: created.id }
  })

  await step('dataset.file.attach {type: source}', async () => {
    const attached = await cbk.dataset.file.attach(ctx.datasetId, ctx.factsId, { type: 'source' })
    assert.deepEqual(attached, { id: ctx.factsId })
  })

  await step('dataset.file.sync', async () => {
    ctx.syncStarted = Date.now() - 1
    const synced = await cbk.dataset.file.sync(ctx.datasetId, ctx.factsId, {})
    assert.deepEqual(synced, { id: ctx.factsId, status: 'queued' })
  })

  await step('dataset.file.sync again -> TOO_MANY_REQUESTS', async () => {
    // The stock client (which retries 429 a few times, then surfaces the server's envelope).
    const err = await rejectsWithCode(
      cbk.dataset.file.sync(ctx.datasetId, ctx.factsId, {}), 'TOO_MANY_REQUESTS', 'second sync')
    // The same refusal seen on the wire: 429 with a Retry-After in whole seconds.
    lastResponse = null
    await rejectsWithCode(
      observedDataset.file.sync(ctx.datasetId, ctx.factsId, {}), 'TOO_MANY_REQUESTS', 'third sync')
    assert.ok(lastResponse, 'the observing fetchFn saw no response')
    assert.equal(lastResponse.status, 429)
    const retryAfter = lastResponse.headers.get('retry-after')
    assert.match(String(retryAfter), /^[1-9][0-9]*$/, `Retry-After must be positive whole seconds, got ${retryAfter}`)
    assert.ok(Number(retryAfter) <= 120, `Retry-After ${retryAfter} exceeds the 120 s cooldown`)
    return { code: err.code, message: err.message, retryAfter: Number(retryAfter) }
  })

  await step('dataset.record.list until records appear', async () => {
    const source = `file:///${ctx.factsId}`
    const deadline = Date.now() + SYNC_TIMEOUT_MS
    let records = []
    let polls = 0
    while (Date.now() < deadline) {
      polls++
      records = (await allRecords(ctx.datasetId)).filter((r) => r.source === source)
      if (records.length) break
      const events = await datasetEvents(ctx.datasetId)
      const failed = Array.isArray(events) &&
        events.find((e) => e.type === 'sync.failed' && e.fileId === ctx.factsId)
      assert.ok(!failed, `sync failed: ${JSON.stringify(failed)}`)
      await sleep(100)
    }
    if (!records.length) {
      const events = await datasetEvents(ctx.datasetId)
      assert.fail(`no records with source ${source} after ${SYNC_TIMEOUT_MS} ms; events: ${JSON.stringify(events)}`)
    }
    for (const r of records) {
      assert.equal(typeof r.id, 'string')
      assert.equal(typeof r.text, 'string')
      assert.equal(typeof r.createdAt, 'number')
      assert.equal(typeof r.updatedAt, 'number')
    }
    assert.ok(records.some((r) => r.text.includes(SENTENCE)), 'no record contains the known sentence')
    ctx.factsRecords = records.length
    return { polls, records: records.length }
  })

  await step('dataset.search', async () => {
    const result = await cbk.dataset.search(ctx.datasetId, QUERY)
    assert.ok(Array.isArray(result?.records), `expected {records: [...]}, got ${JSON.stringify(result)}`)
    assert.ok(result.records.length >= 1, 'search returned no records')
    const top = result.records[0]
    assert.equal(typeof top.id, 'string')
    assert.equal(typeof top.score, 'number')
    assert.ok(top.text.includes(SENTENCE), `top record lacks the sentence: ${JSON.stringify(top)}`)
    assert.equal(top.source, `file:///${ctx.factsId}`)
    return { hits: result.records.length, top: { id: top.id, score: top.score, source: top.source } }
  })

  await step(`create, upload and attach ${EXTRA_FILES} more files`, async () => {
    ctx.extraIds = []
    ctx.docsIds = []
    for (let i = 0; i < EXTRA_FILES; i++) {
      const isDocs = i % DOCS_EVERY === 0
      const meta = isDocs ? { category: 'docs', n: i } : i % 2 ? { category: 'misc', n: i } : undefined
      const id = await createAndUpload(`extra-${String(i).padStart(2, '0')}.txt`, `${filler(i)}\n`, meta)
      const attached = await cbk.dataset.file.attach(ctx.datasetId, id, { type: 'source' })
      assert.deepEqual(attached, { id })
      ctx.extraIds.push(id)
      if (isDocs) ctx.docsIds.push(id)
    }
    ctx.attached = [ctx.factsId, ...ctx.extraIds]
    assert.equal(ctx.attached.length, 14)
    assert.equal(new Set(ctx.attached).size, 14)
    return { attached: ctx.attached.length, docs: ctx.docsIds.length }
  })

  await step('dataset.file.list {take: 5} paged by cursor', async () => {
    const sizes = []
    const seen = []
    let cursor
    for (let i = 0; i < 10; i++) {
      const page = await cbk.dataset.file.list(ctx.datasetId, { take: 5, ...(cursor ? { cursor } : {}) })
      assert.ok(Array.isArray(page.items), `items must be an array, got ${JSON.stringify(page)}`)
      sizes.push(page.items.length)
      for (const item of page.items) {
        assert.equal(typeof item.id, 'string')
        assert.equal(typeof item.createdAt, 'number')
        assert.equal(typeof item.updatedAt, 'number')
        seen.push(item.id)
      }
      cursor = page.cursor
      if (!cursor) break
      assert.equal(typeof cursor, 'string')
    }
    assert.ok(!cursor, 'the walk did not end within 10 pages')
    assert.deepEqual(sizes, [5, 5, 4], `page sizes ${JSON.stringify(sizes)}`)
    assert.equal(seen.length, new Set(seen).size, `an id was seen twice: ${JSON.stringify(seen)}`)
    assert.deepEqual([...seen].sort(), [...ctx.attached].sort())
    return { sizes }
  })

  await step("dataset.file.list {meta: {category: 'docs'}}", async () => {
    const page = await cbk.dataset.file.list(ctx.datasetId, { meta: { category: 'docs' } })
    const ids = page.items.map((i) => i.id)
    assert.deepEqual([...ids].sort(), [...ctx.docsIds].sort())
    for (const item of page.items) assert.equal(item.meta?.category, 'docs')
    assert.ok(!page.cursor, 'a single page should have no cursor')
    const misc = await cbk.dataset.file.list(ctx.datasetId, { meta: { category: 'misc' } })
    assert.ok(misc.items.every((i) => i.meta?.category === 'misc'))
    assert.ok(misc.items.length > 0)
    const none = await cbk.dataset.file.list(ctx.datasetId, { meta: { category: 'nope' } })
    assert.deepEqual(none.items, [])
    return { docs: ids.length, misc: misc.items.length }
  })

  await step('dataset.file.list().stream() (JSONL)', async () => {
    const ids = []
    for await (const item of cbk.dataset.file.list(ctx.datasetId).stream()) {
      assert.equal(item.type, 'item', `unexpected stream item ${JSON.stringify(item)}`)
      assert.equal(typeof item.data?.id, 'string')
      assert.equal(typeof item.data.createdAt, 'number')
      ids.push(item.data.id)
    }
    assert.equal(ids.length, new Set(ids).size, 'the stream repeated an id')
    assert.deepEqual([...ids].sort(), [...ctx.attached].sort())
    const docs = []
    for await (const item of cbk.dataset.file.list(ctx.datasetId, { meta: { category: 'docs' } }).stream()) {
      docs.push(item.data.id)
    }
    assert.deepEqual([...docs].sort(), [...ctx.docsIds].sort())
    return { streamed: ids.length, streamedDocs: docs.length }
  })

  await step('dataset.file.detach {deleteRecords: true}', async () => {
    const detached = await cbk.dataset.file.detach(ctx.datasetId, ctx.factsId, { deleteRecords: true })
    assert.deepEqual(detached, { id: ctx.factsId })
    const source = `file:///${ctx.factsId}`
    const left = (await allRecords(ctx.datasetId)).filter((r) => r.source === source)
    assert.deepEqual(left, [], `records of the detached file remain: ${left.length}`)
    const search = await cbk.dataset.search(ctx.datasetId, QUERY)
    assert.ok(!search.records.some((r) => r.source === source || r.text.includes(SENTENCE)),
      `search still finds the detached file: ${JSON.stringify(search.records[0])}`)
    const listed = []
    for await (const item of cbk.dataset.file.list(ctx.datasetId).stream()) listed.push(item.data.id)
    assert.ok(!listed.includes(ctx.factsId), 'the detached file is still listed')
    assert.equal(listed.length, 13)
    return { removedRecords: ctx.factsRecords, stillAttached: listed.length }
  })

  await step('dataset.file.sync of detached file -> NOT_FOUND', async () => {
    const err = await rejectsWithCode(
      cbk.dataset.file.sync(ctx.datasetId, ctx.factsId, {}), 'NOT_FOUND', 'sync after detach')
    return { code: err.code, message: err.message }
  })

  await step('file.delete then file.fetch -> NOT_FOUND', async () => {
    const deleted = await cbk.file.delete(ctx.factsId)
    assert.deepEqual(deleted, { id: ctx.factsId })
    const err = await rejectsWithCode(cbk.file.fetch(ctx.factsId), 'NOT_FOUND', 'fetch after delete')
    return { code: err.code, message: err.message }
  })

  await step('file.delete of an attached file drops it from dataset.file.list', async () => {
    const victim = ctx.docsIds[0]
    assert.deepEqual(await cbk.file.delete(victim), { id: victim })
    const page = await cbk.dataset.file.list(ctx.datasetId, { take: 100 })
    const ids = page.items.map((i) => i.id)
    assert.ok(!ids.includes(victim), 'a deleted file is still listed in the dataset')
    assert.equal(ids.length, 12)
    await rejectsWithCode(cbk.dataset.file.sync(ctx.datasetId, victim, {}), 'NOT_FOUND', 'sync of a deleted file')
    return { stillAttached: ids.length }
  })

  emit({ step: 'done', ok: true })
}

main().catch((error) => {
  if (error?.stack) console.error(error.stack)
  // Exit only once the failure line is flushed (stdout may be a pipe).
  process.stdout.write(JSON.stringify({ step: current, ok: false, error: describeError(error) }) + '\n',
    () => process.exit(1))
})
