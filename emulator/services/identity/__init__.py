"""Sign-in and cloud discovery: what standard Azure clients (SDKs, az) need before calling ARM."""
