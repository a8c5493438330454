// Preloaded into Prism by tests/prism_support.py (`node --require <this file> prism mock ...`).
//
// Prism 5.x lists a request's validation errors in an `sl-violations` response header (a JSON array). When
// a message quotes a character an HTTP header cannot carry (anything above U+00FF, e.g. an unexpected body
// property named "一"), Node's setHeader throws "Invalid character in header content" outside any handler
// and the whole Prism process exits (code 1); every later request is refused. Known upstream:
// stoplightio/prism#1934 (open; the fix in PR #2400 was not merged).
//
// This shim escapes every non-ASCII character of that one header as a JSON \uXXXX escape, so the header
// stays valid JSON with the same meaning and Prism's answers (status, headers, body) are otherwise
// unchanged. Nothing else is patched.
'use strict';

const http = require('http');

const original = http.ServerResponse.prototype.setHeader;

http.ServerResponse.prototype.setHeader = function setHeader(name, value) {
  if (typeof name === 'string' && name.toLowerCase() === 'sl-violations' && typeof value === 'string') {
    value = value.replace(/[^\t\x20-\x7e]/g, (ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0'));
  }
  return original.call(this, name, value);
};
