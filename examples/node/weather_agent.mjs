// The weather agent of ../weather_agent.py, written with openai-node: the same tool loop over
// HTTP streaming (resending the history each turn) and WebSocket mode (ResponsesWS, chaining
// previous_response_id and sending only the new items).
//
//   node weather_agent.mjs http|ws "What's the weather in Paris and Oslo?"
//
// It reads OPENAI_BASE_URL and OPENAI_API_KEY like any openai-node program: under pytest the
// rws fixture points them at the test's loopback mount. ResponsesWS derives its URL from the
// base URL (http -> ws) and ignores OPENAI_WEBSOCKET_BASE_URL. Prints one JSON line.
import OpenAI from "openai";
import { ResponsesWS } from "openai/resources/responses/ws";

const MODEL = "gpt-5.2";
const INSTRUCTIONS = "You are a weather assistant. Call get_weather for every city the user asks about.";
const TOOLS = [
  {
    type: "function",
    name: "get_weather",
    description: "Current weather for a city.",
    parameters: {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
      additionalProperties: false,
    },
    strict: true,
  },
];
const FORECASTS = { Paris: { temp_c: 18, sky: "sunny" }, Oslo: { temp_c: 4, sky: "cloudy" } };
const MAX_TURNS = 10;
// Every wait has a bound: a turn that does not end in time fails the run.
const TURN_TIMEOUT_MS = 30_000;

function getWeather(city) {
  return { city, ...(FORECASTS[city] ?? { temp_c: null, sky: "unknown" }) };
}

function runTools(output, toolCalls) {
  return output
    .filter((item) => item.type === "function_call")
    .map((item) => {
      const { city } = JSON.parse(item.arguments);
      toolCalls.push(city);
      return { type: "function_call_output", call_id: item.call_id, output: JSON.stringify(getWeather(city)) };
    });
}

function answerText(response) {
  return response.output
    .filter((item) => item.type === "message")
    .flatMap((item) => item.content.filter((part) => part.type === "output_text").map((part) => part.text))
    .join("");
}

async function askHttp(client, question) {
  const toolCalls = [];
  const history = [{ role: "user", content: question }];
  for (let turn = 1; turn <= MAX_TURNS; turn++) {
    const stream = await client.responses.create({
      model: MODEL,
      instructions: INSTRUCTIONS,
      tools: TOOLS,
      input: history,
      store: false,
      stream: true,
    });
    let response = null;
    for await (const event of stream) {
      if (event.type === "response.completed") response = event.response;
    }
    const results = runTools(response.output, toolCalls);
    if (results.length === 0) return { answer: answerText(response), toolCalls, turns: turn };
    history.push(...response.output, ...results);
  }
  throw new Error(`no answer after ${MAX_TURNS} turns`);
}

function nextTerminal(ws) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no terminal event in time")), TURN_TIMEOUT_MS);
    const done = (event) => {
      clearTimeout(timer);
      ws.off("response.completed", done);
      ws.off("error", failed);
      resolve(event.response);
    };
    const failed = (error) => {
      clearTimeout(timer);
      ws.off("response.completed", done);
      ws.off("error", failed);
      reject(error);
    };
    ws.on("response.completed", done);
    ws.on("error", failed);
  });
}

async function askWebSocket(client, question) {
  const toolCalls = [];
  const ws = new ResponsesWS(client);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("WebSocket did not open in time")), TURN_TIMEOUT_MS);
    ws.socket.once("open", () => { clearTimeout(timer); resolve(); });
    ws.socket.once("error", (error) => { clearTimeout(timer); reject(error); });
  });
  try {
    let input = [{ type: "message", role: "user", content: [{ type: "input_text", text: question }] }];
    let previous;
    for (let turn = 1; turn <= MAX_TURNS; turn++) {
      const terminal = nextTerminal(ws);
      ws.send({
        type: "response.create",
        model: MODEL,
        instructions: INSTRUCTIONS,
        tools: TOOLS,
        input,
        store: false,
        ...(previous ? { previous_response_id: previous } : {}),
      });
      const response = await terminal;
      const results = runTools(response.output, toolCalls);
      if (results.length === 0) return { answer: answerText(response), toolCalls, turns: turn };
      previous = response.id;
      input = results;
    }
    throw new Error(`no answer after ${MAX_TURNS} turns`);
  } finally {
    ws.close();
  }
}

const [transport, question] = process.argv.slice(2);
// No retries behind the test's back: a replay miss is an answer, not a network blip.
const client = new OpenAI({ maxRetries: 0, timeout: TURN_TIMEOUT_MS });
const result = transport === "ws" ? await askWebSocket(client, question) : await askHttp(client, question);
console.log(JSON.stringify(result));
