"""Sans-IO Stratum v1: the line codec, typed messages and the session state machine.

Nothing here does I/O or reads a clock: the daemon's pool connection feeds bytes and
``now`` floats into a :class:`PoolSession` and acts on the :data:`Output` list it returns.
"""

from __future__ import annotations

from stratum_client.protocol.codec import DEFAULT_MAX_LINE, LineCodec, encode
from stratum_client.protocol.events import (
    Action,
    AuthorizationFailed,
    Authorized,
    DifficultyChanged,
    DuplicateJobIgnored,
    Event,
    ExtranonceChanged,
    NewJob,
    Output,
    PoolSilent,
    ProtocolViolation,
    ReconnectRequested,
    RequestFailed,
    RequestTimedOut,
    SendBytes,
    ShareAccepted,
    ShareRejected,
    ShowMessage,
    SubmitTimedOut,
    Subscribed,
    SubscribeFailed,
    VersionMaskChanged,
    VersionRollingNegotiated,
    VersionRollingUnavailable,
)
from stratum_client.protocol.messages import (
    Message,
    Notification,
    Request,
    Response,
    StratumError,
    SubmitErrorCode,
    parse_error,
    parse_message,
)
from stratum_client.protocol.session import PoolSession, SessionState
from stratum_client.protocol.settings import DEFAULT_USER_AGENT, SessionSettings

__all__ = [
    "DEFAULT_MAX_LINE",
    "DEFAULT_USER_AGENT",
    "Action",
    "AuthorizationFailed",
    "Authorized",
    "DifficultyChanged",
    "DuplicateJobIgnored",
    "Event",
    "ExtranonceChanged",
    "LineCodec",
    "Message",
    "NewJob",
    "Notification",
    "Output",
    "PoolSession",
    "PoolSilent",
    "ProtocolViolation",
    "ReconnectRequested",
    "Request",
    "RequestFailed",
    "RequestTimedOut",
    "Response",
    "SendBytes",
    "SessionSettings",
    "SessionState",
    "ShareAccepted",
    "ShareRejected",
    "ShowMessage",
    "StratumError",
    "SubmitErrorCode",
    "SubmitTimedOut",
    "SubscribeFailed",
    "Subscribed",
    "VersionMaskChanged",
    "VersionRollingNegotiated",
    "VersionRollingUnavailable",
    "encode",
    "parse_error",
    "parse_message",
]
