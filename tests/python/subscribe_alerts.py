#!/usr/bin/python3
"""An independent StreamAlerts subscriber, written with Debian's python3-grpcio.

It uses only stubs generated from pantherd's .proto files, as any other
service would: it subscribes, prints one JSON object per alert change on
stdout, and exits after --count changes (or fails after --timeout seconds).

  subscribe_alerts.py --server 127.0.0.1:50051 --stubs DIR --count 3 \
      [--after SEQ] [--min-severity HIGH] [--rule ID] [--token TOKEN]
"""

import argparse
import json
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--stubs", required=True, help="folder of the generated Python stubs")
    parser.add_argument("--count", type=int, required=True, help="changes to read, then exit")
    parser.add_argument("--after", type=int, default=None, help="resume after this sequence")
    parser.add_argument("--min-severity", default=None, help="e.g. HIGH")
    parser.add_argument("--rule", action="append", default=[], help="rule id filter")
    parser.add_argument("--token", default=None, help="API token (bearer)")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()

    sys.path.insert(0, args.stubs)
    import grpc
    from pantherd.v1 import alerts_pb2, common_pb2, detection_service_pb2_grpc

    request = alerts_pb2.StreamAlertsRequest(rule_ids=args.rule)
    if args.after is not None:
        request.start_after_sequence = args.after
    if args.min_severity:
        request.min_severity = common_pb2.Severity.Value("SEVERITY_" + args.min_severity.upper())

    metadata = []
    if args.token:
        metadata.append(("authorization", "Bearer " + args.token))

    with grpc.insecure_channel(args.server) as channel:
        stub = detection_service_pb2_grpc.DetectionServiceStub(channel)
        stream = stub.StreamAlerts(request, timeout=args.timeout, metadata=metadata)
        seen = 0
        try:
            for message in stream:
                kind = message.WhichOneof("message")
                if kind != "change":
                    continue  # heartbeats and gaps
                change = message.change
                alert = change.alert
                print(json.dumps({
                    "sequence": change.sequence,
                    "kind": alerts_pb2.AlertChange.Kind.Name(change.kind),
                    "alert_id": alert.id,
                    "rule_id": alert.rule_id,
                    "title": alert.title,
                    "severity": common_pb2.Severity.Name(alert.severity),
                    "dedup": alert.dedup_string,
                    "event_count": alert.event_count,
                }), flush=True)
                seen += 1
                if seen >= args.count:
                    stream.cancel()
                    return 0
        except grpc.RpcError as e:
            if seen >= args.count:
                return 0
            print("stream ended: %s %s" % (e.code(), e.details()), file=sys.stderr)
            return 1
    print("stream ended after %d of %d changes" % (seen, args.count), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
