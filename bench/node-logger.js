// The log-pipeline peers of scripts/bench: what a Node app does in-process today (the
// reference deployments' "Log Sanitization" property: no passwords, tokens or card
// numbers in any log entry), fed the lines of the shared corpus.
//
//   node bench/node-logger.js regex CORPUS   a hand-written sanitize() of regexes on each
//                                            line, then JSON.stringify of an entry, one
//                                            process.stdout.write per line
//   node bench/node-logger.js pino CORPUS    pino with `redact` (key paths only, as pino
//                                            redacts): JSON lines logged as objects,
//                                            other lines as messages
//
// BENCH_SECRETS: the corpus's secret values as a JSON array (the regex sanitizer also
// masks these literals, as an app that knows its own secrets would). BENCH_NODE_OUT: a
// file to which one JSON line is appended at the end: lines, and the CPU seconds spent in
// the logging calls alone (process.cpuUsage around them, every thread of the process),
// i.e. without reading the corpus and, for pino, without JSON.parse of its JSON lines,
// which an app holding the object would not do.
'use strict';
const fs = require('fs');

const [mode, corpus] = process.argv.slice(2);
const secrets = JSON.parse(process.env.BENCH_SECRETS || '[]');
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// The hand-written sanitizer, as such apps write it: a list of regexes applied in turn.
const PATTERNS = [
  // password=..., "password":"...", token: ..., api_key=..., secret_access_key=...
  [/("?(?:password|passwd|pwd|secret|secret_access_key|token|api[_-]?key|authorization)"?\s*[:=]\s*"?)([^"\s,}]+)/gi, '$1[REDACTED]'],
  [/Bearer\s+[A-Za-z0-9\-._~+/]+=*/g, 'Bearer [REDACTED]'],
  [/\b(?:\d[ -]?){13,19}\b/g, '[CARD]'],
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, '[AWS_KEY]'],
];
if (secrets.length) PATTERNS.push([new RegExp(secrets.map(escape).join('|'), 'g'), '[REDACTED]']);

function sanitize(message) {
  for (const [re, replacement] of PATTERNS) message = message.replace(re, replacement);
  return message;
}

let log;
let prepare = (line) => line;
if (mode === 'regex') {
  log = (line) => {
    process.stdout.write(JSON.stringify({
      timestamp: new Date().toISOString(), level: 'info', message: sanitize(line),
    }) + '\n');
  };
} else if (mode === 'pino') {
  const pino = require('pino');
  const logger = pino({
    level: 'trace',
    redact: {
      paths: ['password', 'token', 'secret', 'apiKey', 'authorization', 'cardNumber',
        '*.password', '*.token', 'req.headers.authorization', 'req.headers.cookie'],
      censor: '[REDACTED]',
    },
  });
  prepare = (line) => {
    if (line.charCodeAt(0) === 123 /* { */) {
      try { return JSON.parse(line); } catch (_) { /* logged as text */ }
    }
    return line;
  };
  log = (entry) => {
    if (typeof entry === 'string') { logger.info(entry); return; }
    const { level, msg, time, ...fields } = entry;
    (typeof logger[level] === 'function' ? logger[level] : logger.info).call(logger, fields, msg);
  };
} else {
  console.error('usage: node-logger.js regex|pino CORPUS');
  process.exit(2);
}

const fd = fs.openSync(corpus, 'r');
const chunk = Buffer.alloc(4 << 20);
let rest = '';
let lines = 0;
let loopCpu = 0;
for (;;) {
  const n = fs.readSync(fd, chunk, 0, chunk.length, null);
  if (n === 0) break;
  const parts = (rest + chunk.toString('utf8', 0, n)).split('\n');
  rest = parts.pop();
  const entries = parts.filter((l) => l.length > 0).map(prepare);
  const before = process.cpuUsage();
  for (const entry of entries) log(entry);
  const used = process.cpuUsage(before);
  loopCpu += (used.user + used.system) / 1e6;
  lines += entries.length;
}
if (rest.length > 0) { log(prepare(rest)); lines += 1; }
if (process.env.BENCH_NODE_OUT) {
  fs.appendFileSync(process.env.BENCH_NODE_OUT, JSON.stringify({ mode, lines, loop_cpu_s: loopCpu }) + '\n');
}
