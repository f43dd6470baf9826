"""The signed tree heads of the verifiable logs, as published on ``keten.log`` (and answered at
``GET /api/log/head``): routing key ``<log>.TreeHeadSigned``, one message per head signed."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

LOG_MESSAGE_VERSION = 1
TREE_HEAD_SIGNED = "TreeHeadSigned"


class TreeHeadSchema(Schema):
    """A signed tree head (RFC 9162's size and root, and when): Ed25519 by the log's key over
    'keten tree head v1' LF log LF tree_size LF root hash in hex LF timestamp in ms since 1970."""

    log = fields.String(required=True, metadata={"example": "data_sharing"})
    tree_size = fields.Integer(required=True, validate=validate.Range(min=0))
    root_hash = fields.String(required=True, metadata={"description": "base64 SHA-256 root (RFC 9162 MTH)"})
    timestamp = fields.String(required=True, metadata={"description": "UTC ISO-8601, milliseconds"})
    key_id = fields.String(required=True)
    public_key = fields.String(required=True, metadata={"description": "base64 raw Ed25519 key; pin it"})
    signature = fields.String(required=True, metadata={"description": "base64 Ed25519 signature"})


class TreeHeadSignedSchema(Schema):
    """A service signed a new head of its verifiable log. Keep it (a witness) and check that the
    next one extends it (``GET /api/log/{log}/consistency``; ``keten_client.HeadWitness``)."""

    schema_version = fields.Integer(required=True, validate=validate.Equal(LOG_MESSAGE_VERSION))
    message = fields.String(required=True, validate=validate.Equal(TREE_HEAD_SIGNED))
    head = fields.Nested(TreeHeadSchema, required=True)
