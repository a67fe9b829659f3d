"""A real SMTP server for crates/server/tests/mail.rs, on aiosmtpd.

Usage: smtpd.py MODE OUT_DIR [CERT KEY [USER PASSWORD]]
MODE: plain, starttls (STARTTLS required) or tls (implicit TLS).
Listens on 127.0.0.1 on a free port, prints "PORT <n>" once ready, writes
each message it accepts to OUT_DIR/<n>.eml (the envelope's recipients on
the first line), and exits when its standard input closes.
"""

import asyncio
import logging
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult


class Saver:
    def __init__(self, out):
        self.out = out
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        tmp = os.path.join(self.out, f".{self.n}.tmp")
        with open(tmp, "wb") as f:
            f.write(("To: " + ",".join(envelope.rcpt_tos) + "\n").encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.out, f"{self.n}.eml"))
        return "250 OK"


def main():
    # A refused certificate or login is what some tests want: keep quiet.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    mode, out = sys.argv[1], sys.argv[2]
    cert = sys.argv[3] if len(sys.argv) > 3 else None
    key = sys.argv[4] if len(sys.argv) > 4 else None
    creds = (sys.argv[5].encode(), sys.argv[6].encode()) if len(sys.argv) > 6 else None

    ctx = None
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, data):
        ok = creds is not None and (data.login, data.password) == creds
        # handled=False: aiosmtpd itself answers 535 to a refusal.
        return AuthResult(success=ok, handled=False)

    handler = Saver(out)

    def factory():
        kw = {}
        if creds:
            kw.update(authenticator=authenticator, auth_required=True)
        if mode == "starttls":
            kw.update(tls_context=ctx, require_starttls=True)
        return SMTP(handler, hostname="smtp.test", **kw)

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            factory, "127.0.0.1", 0, ssl=ctx if mode == "tls" else None
        )
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        # Until the test closes our standard input.
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
