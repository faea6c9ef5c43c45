import { PutObjectCommand } from '@aws-sdk/client-s3'
import { describe, expect, it } from 'vitest'
import { S3Admin } from '../src/storage/s3-admin.js'
import { testCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'

const bucket = 'admin-bucket'
const store = useStore([bucket])

function admin(pageSize?: number): S3Admin {
  return new S3Admin(
    {
      kind: 's3',
      bucket,
      region: 'us-east-1',
      endpoint: store.s3.endpoint,
      forcePathStyle: true,
      credentials: testCredentials,
    },
    pageSize,
  )
}

describe('S3Admin against s3rver', () => {
  it('lists every object under a prefix across pages, and nothing outside it', async () => {
    const keys = Array.from({ length: 7 }, (_, i) => `pfx/T${i}/obj.bin`)
    for (const Key of [...keys, 'pfx2/other.bin', 'outside.bin']) {
      await store.s3.client().send(new PutObjectCommand({ Bucket: bucket, Key, Body: Buffer.from(Key) }))
    }
    const listed = await admin(2).list('pfx/')
    expect(listed.map((o) => o.key).sort()).toEqual(keys.sort())
    expect(listed.every((o) => o.size > 0 && o.lastModified.getTime() > Date.now() - 600_000)).toBe(true)
  })

  it('lists a key range, both ends included, with each object’s ETag, across pages', async () => {
    const range = await admin(2).list('pfx/', { from: 'pfx/T2/obj.bin', through: 'pfx/T5/obj.bin' })
    expect(range.map((o) => o.key)).toEqual(['pfx/T2/obj.bin', 'pfx/T3/obj.bin', 'pfx/T4/obj.bin', 'pfx/T5/obj.bin'])
    expect(range.every((o) => /^"[0-9a-f]{32}"$/.test(o.etag ?? ''))).toBe(true)
    expect((await admin().list('pfx/', { from: 'pfx/T6/obj.bin', through: 'pfx/T9' })).map((o) => o.key)).toEqual([
      'pfx/T6/obj.bin',
    ])
  })

  it('deletes in batches and leaves the rest', async () => {
    const failures = await admin().delete(['pfx/T0/obj.bin', 'pfx/T1/obj.bin'])
    expect(failures).toEqual([])
    const left = (await admin().list('')).map((o) => o.key).sort()
    expect(left).toEqual([
      'outside.bin',
      'pfx/T2/obj.bin',
      'pfx/T3/obj.bin',
      'pfx/T4/obj.bin',
      'pfx/T5/obj.bin',
      'pfx/T6/obj.bin',
      'pfx2/other.bin',
    ])
  })

  it('names the permission when listing is denied', async () => {
    const denied = new S3Admin({
      kind: 's3',
      bucket,
      region: 'us-east-1',
      endpoint: store.s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIAUNKNOWN000000001', secretAccessKey: 'nope-nope-nope-nope' },
    })
    await expect(denied.list('pfx/')).rejects.toThrow(
      /ListObjectsV2 s3:\/\/admin-bucket\/pfx\/: the credentials were rejected/,
    )
  })
})
