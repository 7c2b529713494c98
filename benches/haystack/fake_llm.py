"""A fake OpenAI-compatible LLM for the Haystack side of benches/haystack: answers every
`POST /v1/chat/completions` at once with the same chat completion, the one Tailor's bench gets
from its own fake LLM ("Sure: try the north ridge at dawn."). `GET /last` returns the body of the
last completion request, so the bench can show what reached the LLM.

Run on its own (`python fake_llm.py`), it serves on a free loopback port and prints that port on
its first line of output; pipeline.py starts it that way, as a separate process, so that serving
never competes with the measured pipeline for the interpreter's lock.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLY_TEXT = "Sure: try the north ridge at dawn."
REPLY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": REPLY_TEXT}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
).encode()


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, as the OpenAI client's connection pool expects.
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; without this, Nagle's algorithm can hold the body
    # back until the client's delayed ACK.
    disable_nagle_algorithm = True
    last_request = b"null"

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, b'{"error": "not found"}')
            return
        Handler.last_request = body
        self._send(200, REPLY)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/last":
            self._send(200, Handler.last_request)
        else:
            self._send(404, b'{"error": "not found"}')

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
