"""nhd_bridge: share tickets between any trackers over the Networked Help Desk model.

The public API for plugin authors lives here; everything else may change between releases.
"""

import typing

from nhd_bridge.core import lazy
from nhd_bridge.core.hookspecs import hookimpl

if typing.TYPE_CHECKING:
    from nhd_bridge.core.adapter import (
        Adapter,
        AdapterConfig,
        AdapterContext,
        AdapterError,
        AgreementTerms,
        AttachmentRef,
        AttachmentUpload,
        Capabilities,
        ChangePage,
        CheckResult,
        CommentDraft,
        CommentRecord,
        NotSupported,
        PermanentError,
        TicketChanges,
        TicketDraft,
        TicketRecord,
        TransientError,
    )
    from nhd_bridge.core.model import (
        Actor,
        Agreement,
        Attachment,
        Comment,
        NHDValidationError,
        Ticket,
        format_timestamp,
        nhd_uuid,
        parse_timestamp,
    )
    from nhd_bridge.core.run import Direction, RunSummary

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "Adapter",
    "AdapterConfig",
    "AdapterContext",
    "AdapterError",
    "Agreement",
    "AgreementTerms",
    "Attachment",
    "AttachmentRef",
    "AttachmentUpload",
    "Capabilities",
    "ChangePage",
    "CheckResult",
    "Comment",
    "CommentDraft",
    "CommentRecord",
    "Direction",
    "NHDValidationError",
    "NotSupported",
    "PermanentError",
    "RunSummary",
    "Ticket",
    "TicketChanges",
    "TicketDraft",
    "TicketRecord",
    "TransientError",
    "__version__",
    "format_timestamp",
    "hookimpl",
    "nhd_uuid",
    "parse_timestamp",
]

# A plugin's module imports ``hookimpl`` from here when ``nhd-bridge --help`` lists commands; the
# rest (pydantic models, the run's types) loads on first use.
__getattr__ = lazy.lazy_exports(
    __name__, __all__, ["nhd_bridge.core.adapter", "nhd_bridge.core.model", "nhd_bridge.core.run"]
)
