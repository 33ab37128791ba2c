#!/usr/bin/env node
// The event log through the official @chatbotkit/sdk, unmodified, against a live server:
// event.log.subscribe receives a sync completion live, event.log.export answers.
//
//   BASE_URL=http://127.0.0.1:8000 API_KEY=... node events.mjs
//
// Prints one JSON line per step ({"step", "ok", ...details}); exits 1 on the first failed
// assertion, 2 on bad configuration.

import assert from 'node:assert/strict'

import { ChatBotKit } from '@chatbotkit/sdk'

const BASE_URL = process.env.BASE_URL
const API_KEY = process.env.API_KEY
if (!BASE_URL || !API_KEY) {
  console.error('BASE_URL and API_KEY must be set')
  process.exit(2)
}
const TIMEOUT_MS = Number(process.env.SYNC_TIMEOUT_MS || 60_000)

const cbk = new ChatBotKit({ secret: API_KEY, baseUrl: BASE_URL })
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

const withTimeout = (promise, ms, what) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms))])

async function main() {
  const ctx = {}
  await step('dataset and file', async () => {
    ctx.datasetId = (await cbk.dataset.create({ name: 'events e2e' })).id
    ctx.fileId = (await cbk.file.create({ name: 'note.txt' })).id
    const data = new TextEncoder().encode('The harbour bell rings twice at noon.')
    await cbk.file.upload(ctx.fileId, { data, type: 'text/plain', name: 'note.txt' })
    await cbk.dataset.file.attach(ctx.datasetId, ctx.fileId, { type: 'source' })
    return { datasetId: ctx.datasetId, fileId: ctx.fileId }
  })

  await step('event.log.subscribe receives sync.completed live', async () => {
    const abort = new AbortController()
    const stream = cbk.event.log.subscribe({ historyLength: 1 }).stream({ abortSignal: abort.signal })
    const seen = []
    const waiting = (async () => {
      for await (const line of stream) {
        if (line.type !== 'item') continue
        seen.push(line.data.type)
        if (seen.length === 1) {
          // The history (the attach above) has arrived: the subscription is live now.
          await cbk.dataset.file.sync(ctx.datasetId, ctx.fileId, {})
        }
        if (line.data.type === 'sync.failed' && line.data.fileId === ctx.fileId) {
          throw new Error(`sync failed: ${JSON.stringify(line.data)}`)
        }
        if (line.data.type === 'sync.completed' && line.data.fileId === ctx.fileId) {
          return line.data
        }
      }
      throw new Error('the subscription ended')
    })()
    const completed = await withTimeout(waiting, TIMEOUT_MS, 'sync.completed')
    abort.abort()
    assert.equal(completed.datasetId, ctx.datasetId)
    assert.equal(seen[0], 'file.attached')
    assert.ok(seen.includes('sync.queued'), `live events: ${seen}`)
    return { seen }
  })

  await step('event.log.export', async () => {
    const page = await cbk.event.log.export({ take: 100, meta: { datasetId: ctx.datasetId } })
    const types = page.items.map((item) => item.type)
    assert.ok(types.includes('sync.completed'), `exported: ${types}`)
    assert.ok(types.includes('file.attached'), `exported: ${types}`)
    for (const item of page.items) {
      assert.equal(typeof item.id, 'string')
      assert.equal(typeof item.createdAt, 'number')
    }
    const streamed = []
    for await (const line of cbk.event.log.export({ meta: { datasetId: ctx.datasetId } }).stream()) {
      assert.equal(line.type, 'item')
      streamed.push(line.data.id)
    }
    assert.deepEqual(streamed, page.items.map((item) => item.id))
    const typed = await cbk.event.log.export({ meta: { datasetId: ctx.datasetId, type: 'sync.completed' } })
    assert.deepEqual(typed.items.map((item) => item.type), ['sync.completed'])
    return { exported: page.items.length }
  })

  emit({ step: 'done', ok: true })
  process.exit(0)
}

main().catch((error) => {
  emit({ step: current, ok: false, error: { name: error?.name, code: error?.code, message: error?.message } })
  process.exit(1)
})
