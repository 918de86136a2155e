// Vectors for tests/unit/test_e2ee.py made by livekit-client's own end-to-end encryption
// code, run under Node's WebCrypto: nothing of it is reimplemented here.
//
//   node livekit_e2ee.mjs <livekit-client/dist directory>  >  vectors.json
//
// * kdf: the key material functions the SDK exports (createKeyMaterialFromString/Buffer,
//   deriveKeys, ratchet, importKey, chained as ParticipantKeyHandler.ratchetKey chains
//   them): each step's ratchet output, and a known-answer AES-GCM encryption with the
//   step's (non-extractable) key.
// * frames: frames encrypted by the SDK's e2ee worker bundle (its FrameCryptor), fed
//   plain objects shaped like RTCEncodedVideoFrame/RTCEncodedAudioFrame through the
//   'init', 'setKey', 'enable' and 'encode' messages the SDK's E2EEManager sends it.
// * js_ratchet_window: what the SDK's own receiver (window 8) decrypts of frames whose
//   key is n ratchets past its own.
//
// Math.random is fixed: FrameCryptor.makeIV starts its frame counter at a random
// number, the only randomness in the output, which is then the same on every run.
import { pathToFileURL } from 'node:url';

Math.random = () => 0;

const dist = process.argv[2];
if (!dist) {
  console.error('usage: node livekit_e2ee.mjs <livekit-client/dist directory>');
  process.exit(2);
}

// What a worker global scope has and Node lacks.
globalThis.self = globalThis;
globalThis.onmessage = null;
globalThis.RTCEncodedAudioFrame = class RTCEncodedAudioFrame {};
const echoes = new Map();
globalThis.postMessage = (message) => {
  echoes.get(message)?.();
  if (message.kind === 'log' && ['warn', 'error'].includes(message.data.level)) {
    console.error(`worker ${message.data.level}: ${message.data.msg}`);
  }
};

const lk = await import(pathToFileURL(`${dist}/livekit-client.esm.mjs`).href);
const workerUrl = pathToFileURL(`${dist}/livekit-client.e2ee.worker.mjs`).href;

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const unhex = (text) => new Uint8Array(Buffer.from(text, 'hex'));
const utf8 = (text) => new TextEncoder().encode(text);

// Each import with its own query string is a separate worker: its own keys and cryptors.
let workers = 0;
async function newWorker(options) {
  globalThis.onmessage = null;
  await import(`${workerUrl}?worker=${++workers}`);
  const handle = globalThis.onmessage;
  const send = (kind, data) => handle({ data: { kind, data } });
  // The worker runs its messages one after another and echoes 'enable': once the echo
  // arrives, every message sent before it has been handled.
  const enable = (participantIdentity) =>
    new Promise((resolve) => {
      const message = { kind: 'enable', data: { participantIdentity, enabled: true } };
      echoes.set(message, resolve);
      handle({ data: message });
    });
  send('init', { keyProviderOptions: options, loglevel: 'warn' });
  return {
    async setKey(material, keyIndex) {
      send('setKey', { isPublisher: true, key: material, keyIndex, updateCurrentKeyIndex: true });
      await enable('publisher');
    },
    // Frames through an 'encode' or 'decode' transform; those that come out, by id.
    async transform(kind, trackId, frames) {
      await enable('publisher');
      const out = new Map();
      let finished;
      const done = new Promise((resolve) => (finished = resolve));
      const readableStream = new ReadableStream({
        start(controller) {
          frames.forEach((frame) => controller.enqueue(frame));
          controller.close();
        },
      });
      const writableStream = new WritableStream({
        write(frame) {
          out.set(frame.id, new Uint8Array(frame.data));
        },
        close() {
          finished();
        },
      });
      send(kind, {
        participantIdentity: 'publisher',
        trackId,
        readableStream,
        writableStream,
        hasPacketTrailer: false,
      });
      await done;
      return out;
    },
  };
}

function encodedFrame(id, bytes, { type, mimeType, ssrc = 0x11223344, timestamp = 90000 }) {
  const frame = {
    id,
    data: bytes.slice().buffer,
    timestamp,
    getMetadata: () => ({ synchronizationSource: ssrc, payloadType: 96, mimeType }),
  };
  if (type !== undefined) frame.type = type; // audio frames have no type: isVideoFrame()
  return frame;
}

// Deterministic filler bytes.
function filler(length, seed) {
  const out = new Uint8Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state >>> 24;
  }
  return out;
}

const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
};

async function keyFor(material, options) {
  return (await lk.deriveKeys(material, options)).encryptionKey;
}

async function ratchetOnce(material, salt) {
  // ParticipantKeyHandler.ratchetKey: ratchet(), then importKey(chainKey, same algorithm).
  const chainKey = await lk.ratchet(material, salt);
  return { chainKey, material: await lk.importKey(chainKey, material.algorithm.name, 'derive') };
}

async function ratchetTimes(material, salt, times) {
  for (let i = 0; i < times; i++) material = (await ratchetOnce(material, salt)).material;
  return material;
}

// ---------------------------------------------------------------- key derivation
const KAT = { iv: filler(12, 7), aad: utf8('additional data'), plaintext: utf8('known answer') };

async function kdfCase({ secret, secretHex, salt, keySize }) {
  const overrides = {};
  if (salt !== undefined) overrides.ratchetSalt = salt;
  if (keySize !== undefined) overrides.keySize = keySize;
  const options = new lk.ExternalE2EEKeyProvider(overrides).getOptions();
  let material =
    secret !== undefined
      ? await lk.createKeyMaterialFromString(secret)
      : await lk.createKeyMaterialFromBuffer(unhex(secretHex).buffer);
  const chain = [];
  const kat = [];
  for (let step = 0; step < 3; step++) {
    const key = await keyFor(material, options);
    const sealed = await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv: KAT.iv, additionalData: KAT.aad },
      key,
      KAT.plaintext,
    );
    kat.push(hex(new Uint8Array(sealed)));
    const next = await ratchetOnce(material, options.ratchetSalt);
    chain.push(hex(new Uint8Array(next.chainKey)));
    material = next.material;
  }
  return {
    kdf: material.algorithm.name.toLowerCase(),
    secret,
    secret_hex: secretHex,
    salt: options.ratchetSalt,
    key_bits: options.keySize,
    chain,
    kat,
  };
}

const kdf = [];
for (const kdfInput of [
  { secret: 'correct horse battery staple' },
  { secret: 'pässwörd ✓ 鍵', salt: 'AnotherSalt' },
  { secret: 'a 256-bit web key', keySize: 256 },
  { secretHex: hex(filler(32, 99)) },
  { secretHex: hex(filler(16, 5)), salt: 'HkdfSalt' },
]) {
  kdf.push(await kdfCase(kdfInput));
}

// ---------------------------------------------------------------- frames
const PASSPHRASE = 'recorder e2ee test passphrase';
const OTHER_PASSPHRASE = 'the key at index 3';
const HKDF_SECRET = filler(32, 1234);
const senderOptions = new lk.ExternalE2EEKeyProvider().getOptions();
const sender = await newWorker(senderOptions);
const material = await lk.createKeyMaterialFromString(PASSPHRASE);

const NAL3 = new Uint8Array([0, 0, 1]);
const NAL4 = new Uint8Array([0, 0, 0, 1]);
const SPS = new Uint8Array([0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40, 0x50, 0x1e, 0xd0, 0x0f, 0x08]);
const PPS = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);
const SEI = new Uint8Array([0x06, 0x05, 0x04, 0xde, 0xad, 0xbe, 0xef, 0x80]);

// An IDR access unit with 3-byte start codes (the JS sender makes its clear header's
// start codes 4 bytes long) whose ciphertext and IV are made to hold 00 00 0x runs,
// which the sender must escape: the plaintext is the wanted ciphertext XOR the AES-GCM
// key stream, known here as the key and the IV are (first frame of its SSRC: IV =
// SSRC | timestamp | timestamp, Math.random being 0).
async function craftedIdr(key, ssrc, timestamp) {
  const idrHeader = new Uint8Array([0x65, 0x88]);
  const prefix = concat(NAL3, SEI, NAL3, SPS, NAL3, PPS, NAL4, idrHeader);
  const length = 300;
  const iv = new Uint8Array(12);
  const view = new DataView(iv.buffer);
  view.setUint32(0, ssrc);
  view.setUint32(4, timestamp);
  view.setUint32(8, timestamp);
  const zeros = new Uint8Array(length);
  const keyStream = new Uint8Array(
    await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, zeros),
  ).subarray(0, length);
  const wanted = filler(length, 42);
  const runs = { 10: [0, 0, 0], 40: [0, 0, 1], 70: [0, 0, 2], 100: [0, 0, 3], 130: [0, 0, 0, 0] };
  runs[length - 2] = [0, 0];
  for (const [at, run] of Object.entries(runs)) wanted.set(run, Number(at));
  const payload = wanted.map((byte, i) => byte ^ keyStream[i]);
  return concat(prefix, payload);
}

const vp8Key = concat(new Uint8Array([0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]), filler(500, 1));
const vp8Delta = concat(new Uint8Array([0x31, 0x0b, 0x00]), filler(300, 2));
const h264Sliced = concat(
  NAL4, SPS, NAL4, PPS,
  NAL4, new Uint8Array([0x65, 0xb8]), filler(400, 3),
  NAL4, new Uint8Array([0x65, 0x00, 0x18]), filler(400, 4),
);
const h264Delta = concat(NAL4, new Uint8Array([0x41, 0x9a]), filler(700, 5));
const h265Idr = concat(
  NAL4, new Uint8Array([0x40, 0x01, 0x0c, 0x01]),
  NAL4, new Uint8Array([0x42, 0x01, 0x01, 0x01]),
  NAL4, new Uint8Array([0x44, 0x01, 0xc1, 0x72]),
  NAL4, new Uint8Array([0x26, 0x01, 0xaf]), filler(300, 6),
);
const opus = concat(new Uint8Array([0x78]), filler(120, 7));

const frames = [];
let tracks = 0;
async function encrypt(name, codec, plaintext, frameOptions, key) {
  const out = await sender.transform('encode', `track-${++tracks}`, [
    encodedFrame(name, plaintext, frameOptions),
  ]);
  frames.push({
    name,
    codec,
    plaintext: hex(plaintext),
    encrypted: hex(out.get(name)),
    ...key,
  });
}

const passphraseKey = { secret: PASSPHRASE, kdf: 'pbkdf2', ratchets: 0, key_index: 0 };
await sender.setKey(material, 0);
const video = (type, mimeType) => ({ type, mimeType });
await encrypt('opus', 'audio', opus, { mimeType: 'audio/opus' }, passphraseKey);
await encrypt('opus TOC only', 'audio', opus.subarray(0, 1), { mimeType: 'audio/opus' }, passphraseKey);
await encrypt('empty audio frame', 'audio', new Uint8Array(0), { mimeType: 'audio/opus' }, passphraseKey);
await encrypt('vp8 keyframe', 'vp8', vp8Key, video('key', 'video/VP8'), passphraseKey);
await encrypt('vp8 delta', 'vp8', vp8Delta, video('delta', 'video/VP8'), passphraseKey);
await encrypt('vp9', 'vp9', filler(600, 8), video('key', 'video/VP9'), passphraseKey);
const key0 = await keyFor(material, senderOptions);
await encrypt('h264 idr, escaped', 'h264', await craftedIdr(key0, 1, 0x300),
  { ...video('key', 'video/H264'), ssrc: 1, timestamp: 0x300 }, passphraseKey);
await encrypt('h264 two slices', 'h264', h264Sliced, video('key', 'video/H264'), passphraseKey);
await encrypt('h264 delta', 'h264', h264Delta, video('delta', 'video/H264'), passphraseKey);
await encrypt('h265 idr', 'h265', h265Idr, video('key', 'video/H265'), passphraseKey);
// No slice for the sender's NAL parse (an SEI or AUD would read as an H.265 slice): it
// falls back to VP8's clear bytes, unescaped.
await encrypt('h264 without a slice, key', 'h264', concat(NAL4, SPS, NAL4, PPS, filler(200, 9)),
  video('key', 'video/H264'), passphraseKey);
await encrypt('h264 without a slice, delta', 'h264', concat(NAL4, PPS, filler(200, 10)),
  video('delta', 'video/H264'), passphraseKey);

// The sender ratchets its key twice (a receiver holding the passphrase must follow).
await sender.setKey(await ratchetTimes(material, senderOptions.ratchetSalt, 2), 0);
const ratchetedKey = { ...passphraseKey, ratchets: 2 };
await encrypt('vp8 delta, key ratcheted twice', 'vp8', vp8Delta, video('delta', 'video/VP8'), ratchetedKey);
await encrypt('opus, key ratcheted twice', 'audio', opus, { mimeType: 'audio/opus' }, ratchetedKey);

// Another passphrase at key index 3.
await sender.setKey(await lk.createKeyMaterialFromString(OTHER_PASSPHRASE), 3);
await encrypt('vp8 keyframe, key index 3', 'vp8', vp8Key, video('key', 'video/VP8'),
  { secret: OTHER_PASSPHRASE, kdf: 'pbkdf2', ratchets: 0, key_index: 3 });

// Raw key bytes (an ArrayBuffer key: HKDF) at key index 5.
await sender.setKey(await lk.createKeyMaterialFromBuffer(HKDF_SECRET.slice().buffer), 5);
const hkdfKey = { secret_hex: hex(HKDF_SECRET), kdf: 'hkdf', ratchets: 0, key_index: 5 };
await encrypt('vp8 delta, hkdf', 'vp8', vp8Delta, video('delta', 'video/VP8'), hkdfKey);
await encrypt('h264 idr, hkdf', 'h264', await craftedIdr(
  await keyFor(await lk.createKeyMaterialFromBuffer(HKDF_SECRET.slice().buffer), senderOptions), 1, 0x300),
  { ...video('key', 'video/H264'), ssrc: 1, timestamp: 0x300 }, hkdfKey);

// ---------------------------------------------------------------- the SDK's receiver
const receiverOptions = new lk.BaseKeyProvider({ sharedKey: true, ratchetWindowSize: 8 }).getOptions();
const jsRatchetWindow = [];
for (let ahead = 0; ahead <= 3; ahead++) {
  const keyed = await newWorker(senderOptions);
  await keyed.setKey(await ratchetTimes(material, senderOptions.ratchetSalt, ahead), 0);
  const sealed = await keyed.transform('encode', 'sent', [encodedFrame('f', vp8Delta, video('delta', 'video/VP8'))]);
  const receiver = await newWorker(receiverOptions);
  await receiver.setKey(material, 0);
  const opened = await receiver.transform('decode', 'received', [
    encodedFrame('f', sealed.get('f'), video('delta', 'video/VP8')),
  ]);
  jsRatchetWindow.push({
    ratchets_ahead: ahead,
    ratchet_window_size: receiverOptions.ratchetWindowSize,
    decrypted: opened.has('f') && hex(opened.get('f')) === hex(vp8Delta),
  });
}

const vectors = { livekit_client: lk.version, kdf, frames, js_ratchet_window: jsRatchetWindow };
// Exit once written: the workers' idle-track watchdogs would keep Node up for seconds.
process.stdout.write(JSON.stringify(vectors, null, 1) + '\n', () => process.exit(0));
