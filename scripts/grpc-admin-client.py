"""A gRPC client from outside Rust: discovers dispatch-broker's services
through server reflection only (no .proto files), then calls Sessions
CreateSession and Admin ListSessionFigures with messages built from the
reflected descriptors, and checks the answers.

Usage: grpc-admin-client.py HOST:PORT, with BROKER_TOKEN and
BROKER_ADMIN_TOKEN in the environment.
"""

import os
import sys

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


class Bearer(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call."""

    def __init__(self, token):
        self.metadata = (("authorization", f"Bearer {token}"),)

    def _details(self, details):
        return details._replace(metadata=tuple(details.metadata or ()) + self.metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


def message_class(descriptor):
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(descriptor.file.pool).GetPrototype(descriptor)


def unary(channel, pool, service, method):
    """A callable for `service/method`, typed from the reflected descriptors."""
    descriptor = pool.FindServiceByName(service).methods_by_name[method]
    request, response = message_class(descriptor.input_type), message_class(descriptor.output_type)
    call = channel.unary_unary(
        f"/{service}/{method}",
        request_serializer=request.SerializeToString,
        response_deserializer=response.FromString,
    )
    return request, call


def main():
    address = sys.argv[1]
    token, admin_token = os.environ["BROKER_TOKEN"], os.environ["BROKER_ADMIN_TOKEN"]
    raw = grpc.insecure_channel(address)
    grpc.channel_ready_future(raw).result(timeout=30)
    admin_channel = grpc.intercept_channel(raw, Bearer(admin_token))
    sessions_channel = grpc.intercept_channel(raw, Bearer(token))

    database = ProtoReflectionDescriptorDatabase(admin_channel)
    services = set(database.get_services())
    print("services:", ", ".join(sorted(services)))
    for expected in ("dispatch.v1.Admin", "dispatch.v1.Sessions", "grpc.health.v1.Health"):
        assert expected in services, f"{expected} not listed by reflection"
    pool = DescriptorPool(database)

    create_request, create = unary(sessions_channel, pool, "dispatch.v1.Sessions", "CreateSession")
    session = create(create_request(name="from-python", cols=100, rows=30), timeout=30)
    print("created session", session.id)

    list_request, list_figures = unary(admin_channel, pool, "dispatch.v1.Admin", "ListSessionFigures")
    listing = list_figures(list_request(), timeout=30)
    print(json_format.MessageToJson(listing))
    found = [f for f in listing.sessions if f.session.id == session.id]
    assert len(found) == 1, "the new session is listed"
    figures = found[0]
    assert figures.session.name == "from-python"
    assert figures.session.cols == 100 and figures.session.rows == 30
    assert figures.session.pid > 0
    assert figures.process.processes >= 1
    assert figures.process.rss_bytes > 0

    # The session token does not open Admin.
    _, with_session_token = unary(sessions_channel, pool, "dispatch.v1.Admin", "ListSessionFigures")
    try:
        with_session_token(list_request(), timeout=30)
        raise AssertionError("Admin accepted the session token")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error

    kill_request, kill = unary(admin_channel, pool, "dispatch.v1.Admin", "KillSession")
    killed = kill(kill_request(session_id=session.id), timeout=30)
    assert killed.session.exit.signal == "SIGKILL", killed
    print("grpc python client: OK")


if __name__ == "__main__":
    main()
