"""The table from (channel or provider, event id) to Sigma logsource, with per-category field renames.

Sources, read for this table (no code copied):

- pySigma ``sigma/pipelines/common.py``: the Sigma service name for each Windows event log channel.
- pySigma-pipeline-sysmon ``sigma/pipelines/sysmon/sysmon.py``: the Sysmon event ids of each generic
  category (process_creation is 1, registry_event is 12, 13 and 14, ...).
- pySigma-pipeline-windows ``sigma/pipelines/windows/windows.py``: the PowerShell categories
  (4103, 4104, 400, 600, 800) and the Security audit mapping (4688 for process_creation, 4657 for
  registry events) with its field renames ``NewProcessName`` to ``Image`` and so on.
- SigmaHQ ``documentation/logsource-guides/windows/category/process_creation.md``: Security 4688 and
  Sysmon 1 are the two event sources of process_creation.

Everything here is data. ``classify`` is the only lookup and caches its results.
"""

from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Mapping, Optional, Tuple

from core.events import LogSource

PRODUCT = "windows"

# Event log channel -> Sigma service. Channel names compare case-insensitively, because some
# exports spell them differently (the Mordor datasets write both "Security" and "security").
CHANNEL_SERVICES: Tuple[Tuple[str, str], ...] = (
    ("Security", "security"),
    ("Application", "application"),
    ("System", "system"),
    ("Microsoft-Windows-Sysmon/Operational", "sysmon"),
    ("Microsoft-Windows-PowerShell/Operational", "powershell"),
    ("PowerShellCore/Operational", "powershell"),
    ("Windows PowerShell", "powershell-classic"),
    ("Microsoft-Windows-TaskScheduler/Operational", "taskscheduler"),
    ("Microsoft-Windows-WMI-Activity/Operational", "wmi"),
    ("DNS Server", "dns-server"),
    ("Microsoft-Windows-DNS-Server/Audit", "dns-server-audit"),
    ("Microsoft-Windows-DNS-Server/Analytical", "dns-server-analytic"),
    ("Microsoft-Windows-DriverFrameworks-UserMode/Operational", "driver-framework"),
    ("Microsoft-Windows-NTLM/Operational", "ntlm"),
    ("Microsoft-Windows-DHCP-Server/Operational", "dhcp"),
    ("MSExchange Management", "msexchange-management"),
    ("Microsoft-Windows-AppLocker/MSI and Script", "applocker"),
    ("Microsoft-Windows-AppLocker/EXE and DLL", "applocker"),
    ("Microsoft-Windows-AppLocker/Packaged app-Deployment", "applocker"),
    ("Microsoft-Windows-AppLocker/Packaged app-Execution", "applocker"),
    ("Microsoft-Windows-PrintService/Admin", "printservice-admin"),
    ("Microsoft-Windows-PrintService/Operational", "printservice-operational"),
    ("Microsoft-Windows-CodeIntegrity/Operational", "codeintegrity-operational"),
    ("Microsoft-Windows-SmbClient/Security", "smbclient-security"),
    ("Microsoft-Windows-Windows Firewall With Advanced Security/Firewall", "firewall-as"),
    ("Microsoft-Windows-Bits-Client/Operational", "bits-client"),
    ("Microsoft-Windows-Windows Defender/Operational", "windefend"),
    ("Microsoft-Windows-TerminalServices-LocalSessionManager/Operational", "terminalservices-localsessionmanager"),
    ("Microsoft-ServiceBus-Client", "microsoft-servicebus-client"),
    ("Microsoft-Windows-LDAP-Client/Debug", "ldap_debug"),
    ("Microsoft-Windows-Security-Mitigations/Kernel Mode", "security-mitigations"),
    ("Microsoft-Windows-Security-Mitigations/User Mode", "security-mitigations"),
    ("Microsoft-Windows-Diagnosis-Scripted/Operational", "diagnosis-scripted"),
    ("Microsoft-Windows-Shell-Core/Operational", "shell-core"),
    ("OpenSSH/Operational", "openssh"),
    ("Microsoft-Windows-BitLocker/BitLocker Management", "bitlocker"),
    # The next two channels come from the requirements stated in SigmaHQ rules of these services.
    ("Microsoft-Windows-DNS Client Events/Operational", "dns-client"),
    ("Microsoft-Windows-LSA/Operational", "lsa-server"),
)

# Provider -> Sigma service, for records without a channel and for forwarded events, which a
# Windows Event Collector stores in the "ForwardedEvents" channel under their original provider.
PROVIDER_SERVICES: Tuple[Tuple[str, str], ...] = (
    ("Microsoft-Windows-Security-Auditing", "security"),
    ("Microsoft-Windows-Sysmon", "sysmon"),
    ("Microsoft-Windows-PowerShell", "powershell"),
    ("PowerShellCore", "powershell"),
    ("PowerShell", "powershell-classic"),
    ("Microsoft-Windows-TaskScheduler", "taskscheduler"),
    ("Microsoft-Windows-WMI-Activity", "wmi"),
    ("Microsoft-Windows-Windows Defender", "windefend"),
    ("Microsoft-Windows-Bits-Client", "bits-client"),
)

# Security 4688 names the new and parent process differently from Sysmon 1. These renames let a
# process_creation rule written for Sysmon fields see Security events (pySigma windows audit mapping).
_SECURITY_PROCESS_RENAMES: Tuple[Tuple[str, str], ...] = (
    ("NewProcessName", "Image"),
    ("ParentProcessName", "ParentImage"),
    ("SubjectLogonId", "LogonId"),
)

# (service, event ids, categories, field renames as (original name, Sigma name) pairs).
EVENT_CATEGORIES: Tuple[Tuple[str, Tuple[int, ...], Tuple[str, ...], Tuple[Tuple[str, str], ...]], ...] = (
    ("sysmon", (1,), ("process_creation",), ()),
    ("sysmon", (2,), ("file_change",), ()),
    ("sysmon", (3,), ("network_connection",), ()),
    ("sysmon", (4, 16), ("sysmon_status",), ()),
    ("sysmon", (5,), ("process_termination",), ()),
    ("sysmon", (6,), ("driver_load",), ()),
    ("sysmon", (7,), ("image_load",), ()),
    ("sysmon", (8,), ("create_remote_thread",), ()),
    ("sysmon", (9,), ("raw_access_thread",), ()),
    ("sysmon", (10,), ("process_access",), ()),
    ("sysmon", (11,), ("file_event",), ()),
    # Sysmon 12 covers both key creation and deletion, and rules tell them apart by EventType.
    ("sysmon", (12,), ("registry_add", "registry_delete", "registry_event"), ()),
    ("sysmon", (13,), ("registry_set", "registry_event"), ()),
    ("sysmon", (14,), ("registry_rename", "registry_event"), ()),
    ("sysmon", (15,), ("create_stream_hash",), ()),
    ("sysmon", (17, 18), ("pipe_created",), ()),
    ("sysmon", (19, 20, 21), ("wmi_event",), ()),
    ("sysmon", (22,), ("dns_query",), ()),
    ("sysmon", (23, 26), ("file_delete",), ()),
    # pySigma calls the Sysmon 24 category clipboard_capture, and the name clipboard_change is also in use.
    ("sysmon", (24,), ("clipboard_change", "clipboard_capture"), ()),
    ("sysmon", (25,), ("process_tampering",), ()),
    ("sysmon", (27,), ("file_block_executable",), ()),
    ("sysmon", (28,), ("file_block_shredding",), ()),
    ("sysmon", (29,), ("file_executable_detected",), ()),
    ("sysmon", (255,), ("sysmon_error",), ()),
    ("security", (4688,), ("process_creation",), _SECURITY_PROCESS_RENAMES),
    # NOTE: pySigma also maps registry_set and registry_add to 4657, but only together with an
    # OperationType condition on the value, which a (channel, event id) table cannot express.
    ("security", (4657,), ("registry_event",), (("NewValue", "Details"),)),
    ("powershell", (4103,), ("ps_module",), ()),
    ("powershell", (4104,), ("ps_script",), ()),
    ("powershell-classic", (400,), ("ps_classic_start",), ()),
    ("powershell-classic", (600,), ("ps_classic_provider_start",), ()),
    ("powershell-classic", (800,), ("ps_classic_script",), ()),
)


@dataclass(frozen=True)
class Classification:
    """The logsource of one kind of event and the field renames that its category needs."""

    logsource: LogSource
    renames: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Index:
    channels: Dict[str, str]
    providers: Dict[str, str]
    categories: Dict[Tuple[str, int], Tuple[FrozenSet[str], Tuple[Tuple[str, str], ...]]]


_index: Optional[_Index] = None
_cache: Dict[Tuple[Optional[str], Optional[str], Optional[int]], Classification] = {}
# The cache keys come from event data, so a file of made-up channel names must not grow it without
# bound. Real logs hold a few hundred distinct (channel, provider, event id) triples at most.
_CACHE_LIMIT = 4096


def _build_index() -> _Index:
    channels = {channel.lower(): service for channel, service in CHANNEL_SERVICES}
    providers = {provider.lower(): service for provider, service in PROVIDER_SERVICES}
    categories: Dict[Tuple[str, int], Tuple[FrozenSet[str], Tuple[Tuple[str, str], ...]]] = {}
    for service, event_ids, names, renames in EVENT_CATEGORIES:
        for event_id in event_ids:
            known_names, known_renames = categories.get((service, event_id), (frozenset(), ()))
            categories[(service, event_id)] = (known_names | frozenset(names), known_renames + renames)
    return _Index(channels, providers, categories)


def classify(channel: Optional[str], provider: Optional[str], event_id: Optional[int]) -> Classification:
    """Look up the logsource and field renames of events with this channel, provider and event id.

    The services are the union of the channel's and the provider's. Unknown channels and providers
    give a logsource with product ``windows`` and no service or category.
    """
    key = (channel, provider, event_id)
    found = _cache.get(key)
    if found is not None:
        return found

    global _index
    if _index is None:
        _index = _build_index()
    services = set()
    if isinstance(channel, str):
        service = _index.channels.get(channel.lower())
        if service is not None:
            services.add(service)
    if isinstance(provider, str):
        service = _index.providers.get(provider.lower())
        if service is not None:
            services.add(service)

    categories: FrozenSet[str] = frozenset()
    renames: Tuple[Tuple[str, str], ...] = ()
    if isinstance(event_id, int):
        for service in sorted(services):
            names, service_renames = _index.categories.get((service, event_id), (frozenset(), ()))
            categories |= names
            renames += service_renames

    found = Classification(LogSource(PRODUCT, categories, frozenset(services)), renames)
    if len(_cache) < _CACHE_LIMIT:
        _cache[key] = found
    return found


def logsource_for(fields: Mapping[str, Any]) -> LogSource:
    """Return the Sigma logsource of an event from its ``Channel``, ``Provider_Name`` and ``EventID``."""
    event_id = fields.get("EventID")
    if not isinstance(event_id, int) or isinstance(event_id, bool):
        event_id = None
    return classify(fields.get("Channel"), fields.get("Provider_Name"), event_id).logsource


# ECS documents that carry no Windows channel (Elastic Defend, for one) still name what happened in
# event.category and event.type (ECS 8.x "Event Fields" reference). A document classifies by the
# first row whose category and type it both lists. Only the categories the ECS mapping of the
# Elastic targets filters on are listed, so that scan and the Elastic queries see the same events.
ECS_EVENT_CATEGORIES: Tuple[Tuple[str, str, str], ...] = (
    ("process", "start", "process_creation"),
)


def ecs_logsource(categories: Any, types: Any) -> Optional[LogSource]:
    """Return the logsource of an ECS document from its event.category and event.type, or None."""
    category_set = set(categories) if isinstance(categories, list) else {categories}
    type_set = set(types) if isinstance(types, list) else {types}
    for ecs_category, ecs_type, sigma_category in ECS_EVENT_CATEGORIES:
        if ecs_category in category_set and ecs_type in type_set:
            return LogSource("windows", frozenset({sigma_category}), frozenset())
    return None
