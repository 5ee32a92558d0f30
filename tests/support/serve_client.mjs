// A client of `pytest-responses-ws serve` in another language: Node with no package at all.
// HTTP: fetch with an SSE stream. WebSocket: a minimal RFC 6455 client over node:http (Node 20
// has no global WebSocket). Plays a two-turn tool loop over each transport, then one request
// the cassette does not hold, and prints what it saw as one JSON line.
//
//   node serve_client.mjs HTTP_BASE_URL WS_BASE_URL
import crypto from "node:crypto";
import http from "node:http";

const [httpBase, wsBase] = process.argv.slice(2);
const TIMEOUT_MS = 10_000; // every wait has a bound
const tools = [{ type: "function", name: "get_weather", parameters: { type: "object" } }];
const question = { type: "message", role: "user", content: [{ type: "input_text", text: "Weather?" }] };

async function sse(body) {
  const answer = await fetch(`${httpBase}/responses`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer not-a-key" },
    body: JSON.stringify({ ...body, stream: true }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await answer.text();
  if (!answer.ok) return { status: answer.status, error: JSON.parse(text).error.code };
  const events = text
    .split("\n\n")
    .map((block) => block.split("\n").find((line) => line.startsWith("data: ")))
    .filter(Boolean)
    .map((line) => JSON.parse(line.slice(6)));
  return { status: answer.status, events };
}

function connect(url) {
  const key = crypto.randomBytes(16).toString("base64");
  const { hostname, port, pathname } = new URL(url.replace(/^ws/, "http"));
  return new Promise((resolve, reject) => {
    const request = http.request({
      hostname, port, path: pathname,
      headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": key },
      timeout: TIMEOUT_MS,
    });
    request.on("upgrade", (_response, socket) => resolve(new Socket(socket)));
    request.on("response", (response) => reject(new Error(`no upgrade: HTTP ${response.statusCode}`)));
    request.on("timeout", () => request.destroy(new Error("handshake timed out")));
    request.on("error", reject);
    request.end();
  });
}

class Socket {
  constructor(socket) {
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    this.messages = [];
    this.waiting = null;
    socket.on("data", (chunk) => this.receive(chunk));
  }

  send(object) {
    const payload = Buffer.from(JSON.stringify(object));
    const mask = crypto.randomBytes(4);
    const length = payload.length;
    const header = length < 126 ? Buffer.from([0x81, 0x80 | length])
      : length < 65536 ? Buffer.from([0x81, 0x80 | 126, length >> 8, length & 255])
      : Buffer.concat([Buffer.from([0x81, 0x80 | 127]), bigLength(length)]);
    const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]));
    this.socket.write(Buffer.concat([header, mask, masked]));
  }

  receive(chunk) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length < 2) return;
      let length = this.buffer[1] & 127;
      let offset = 2;
      if (length === 126) { if (this.buffer.length < 4) return; length = this.buffer.readUInt16BE(2); offset = 4; }
      else if (length === 127) { if (this.buffer.length < 10) return; length = Number(this.buffer.readBigUInt64BE(2)); offset = 10; }
      if (this.buffer.length < offset + length) return;
      const opcode = this.buffer[0] & 15;
      const payload = this.buffer.subarray(offset, offset + length).toString("utf8");
      this.buffer = this.buffer.subarray(offset + length);
      if (opcode === 1) this.messages.push(JSON.parse(payload));
      if (opcode === 8) this.messages.push({ type: "closed", code: length >= 2 ? Buffer.from(payload).readUInt16BE(0) : null });
      if (this.waiting) this.waiting();
    }
  }

  async next() {
    const deadline = Date.now() + TIMEOUT_MS;
    while (this.messages.length === 0) {
      if (Date.now() > deadline) throw new Error("no WebSocket event within the bound");
      await new Promise((resolve) => { this.waiting = resolve; setTimeout(resolve, 100); });
    }
    return this.messages.shift();
  }

  async turn(request) {
    this.send({ type: "response.create", ...request });
    const events = [];
    for (;;) {
      const event = await this.next();
      events.push(event);
      if (["response.completed", "response.failed", "response.incomplete", "error", "closed"].includes(event.type)) return events;
    }
  }

  close() { this.socket.destroy(); }
}

function bigLength(length) {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(length));
  return bytes;
}

function summary(events) {
  const last = events[events.length - 1];
  const output = last.response ? last.response.output : [];
  return { types: [...new Set(events.map((e) => e.type))], id: last.response?.id, output };
}

function callOutput(output) {
  return { type: "function_call_output", call_id: output[0].call_id, output: '{"temperature": 18}' };
}

const seen = {};
// HTTP: the client resends the whole history.
const first = await sse({ model: "gpt-5.2", input: [question], tools });
const call = summary(first.events);
const second = await sse({ model: "gpt-5.2", input: [question, ...call.output, callOutput(call.output)], tools });
seen.http = [call, summary(second.events)];
// WebSocket: the client chains previous_response_id and sends only the new item.
const ws = await connect(`${wsBase}/responses`);
const wsCall = summary(await ws.turn({ model: "gpt-5.2", input: [question], tools }));
const wsText = summary(await ws.turn({ model: "gpt-5.2", previous_response_id: wsCall.id, input: [callOutput(wsCall.output)], tools }));
ws.close();
seen.ws = [wsCall, wsText];
// A request the cassette does not hold: the server must answer it as a miss.
seen.miss = await sse({ model: "gpt-5.2", input: "Something nobody recorded", tools });
console.log(JSON.stringify(seen));
