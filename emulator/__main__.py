"""``python -m emulator serve``: run the local Azure over HTTPS."""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn

from emulator.server import make_app, make_context, write_endpoint_file
from emulator.tls import ensure_certificates, names_from_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the local Azure")
    serve.add_argument("--state-dir", default=os.environ.get("LOCAL_AZURE_STATE_DIR", ".local-azure"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_AZURE_PORT", "8443")))
    serve.add_argument(
        "--time-factor",
        type=float,
        default=float(os.environ["LOCAL_AZURE_TIME_FACTOR"]) if "LOCAL_AZURE_TIME_FACTOR" in os.environ else None,
        help="scale Azure's durations (1 = as long as Azure takes, 0 = instant)",
    )
    serve.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ctx = make_context(args.state_dir, time_factor=args.time_factor)
    ca, cert, key = ensure_certificates(os.path.join(args.state_dir, "tls"), names_from_env())
    url = f"https://{args.host}:{args.port}"
    write_endpoint_file(ctx, url, ca.resolve())
    uvicorn.run(
        make_app(ctx),
        host=args.host,
        port=args.port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=2,  # idle keep-alive clients must not hold a restart up
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
