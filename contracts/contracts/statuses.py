"""Status vocabularies shared by commands, events and read models (seed-facing spellings)."""

from __future__ import annotations

from enum import StrEnum


class ResourcesStatus(StrEnum):
    STOPPED = "Stopped"
    PROVISIONING = "Provisioning"
    PROVISIONED = "Provisioned"
    STOPPING = "Stopping"


class ResourcesDesiredStatus(StrEnum):
    STOPPED = "Stopped"
    PROVISIONED = "Provisioned"


class RuntimeStatus(StrEnum):
    UNAVAILABLE = "Unavailable"
    STANDBY = "Standby"
    INITIALIZING = "Initializing"
    AWAITING_APPROVAL = "AwaitingApproval"
    BOOTSTRAPPING = "Bootstrapping"
    REPLAYING = "Replaying"
    PAUSED = "Paused"
    RUNNING = "Running"
    SUSPENDED = "Suspended"


class RuntimeDesiredStatus(StrEnum):
    UNAVAILABLE = "Unavailable"
    STANDBY = "Standby"
    PAUSED = "Paused"
    RUNNING = "Running"
    SUSPENDED = "Suspended"


class CombinedStatus(StrEnum):
    """`deployment_status`: never `Provisioned` (Feldera combined_status.rs)."""

    STOPPED = "Stopped"
    PROVISIONING = "Provisioning"
    UNAVAILABLE = "Unavailable"
    STANDBY = "Standby"
    AWAITING_APPROVAL = "AwaitingApproval"
    INITIALIZING = "Initializing"
    BOOTSTRAPPING = "Bootstrapping"
    REPLAYING = "Replaying"
    PAUSED = "Paused"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    STOPPING = "Stopping"


class CombinedDesiredStatus(StrEnum):
    STOPPED = "Stopped"
    UNAVAILABLE = "Unavailable"
    STANDBY = "Standby"
    PAUSED = "Paused"
    RUNNING = "Running"
    SUSPENDED = "Suspended"


class StorageStatus(StrEnum):
    CLEARED = "Cleared"
    IN_USE = "InUse"
    CLEARING = "Clearing"


class ProgramStatus(StrEnum):
    """A pipeline's program is a Config; its validation plays the part of compilation."""

    PENDING = "Pending"
    SUCCESS = "Success"
    SQL_ERROR = "SqlError"


class InitialStatus(StrEnum):
    """`/start?initial=`: the runtime status a freshly provisioned pipeline goes to."""

    RUNNING = "running"
    PAUSED = "paused"
    STANDBY = "standby"


class BootstrapPolicy(StrEnum):
    ALLOW = "allow"
    REJECT = "reject"
    AWAIT_APPROVAL = "await_approval"


class RunStatus(StrEnum):
    """Canonical execution status: seed 003's eleven values plus `interrupted`."""

    PENDING = "pending"
    QUEUED = "queued"
    PROCESSING = "processing"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETE = "complete"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    INVALID = "invalid"
    INTERRUPTED = "interrupted"


class MarquezRunState(StrEnum):
    """Seed 002's view of a run."""

    NEW = "NEW"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ABORTED = "ABORTED"


class ExecutionStatus(StrEnum):
    """Seed 004's view of a run (FactFlow ExecutionResponse.status)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class ReplaySource(StrEnum):
    STORAGE = "storage"
    LINEAGE = "lineage"
    MANUAL = "manual"
