"""Install lsassdump: the core, the bundled rules, the Elastic and Splunk parts, and the command."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
VERSION = re.search(r'^__version__ = "([^"]+)"', (HERE / "core" / "__init__.py").read_text(), re.M).group(1)

setup(
    name="lsassdump",
    version=VERSION,
    description="Sigma rules evaluated exactly, converted to SPL, EQL, Lucene, Query DSL, ES|QL and KQL, "
                "and proven equal across them",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["core", "core.*", "elastic_watcher", "elastic_watcher.*", "splunk_app"])
    + ["lsassdump_rules"],
    package_dir={"lsassdump_rules": "rules"},
    package_data={
        "core.sample": ["*.jsonl"],
        "core.portability": ["*.json"],
        "lsassdump_rules": ["*.yml", "*.md"],
        "splunk_app": ["README*", "default/*", "metadata/*", "bin/*.py", "lib/lsassdump_splunk/*.py", "lib/lsassdump_splunk/*.json"],
        "elastic_watcher": ["*.json"],
    },
    install_requires=[
        "pyyaml>=5.4",
        # evtx 0.14 is the first release whose iterator recovers from damaged chunks; it needs
        # Python 3.10. On 3.9 lsassdump reports EVTX files as unreadable and reads the rest.
        "evtx>=0.14; python_version >= '3.10'",
        "splunk-sdk==2.1.1",
        "elasticsearch>=8.12",
    ],
    extras_require={
        "test": [
            "pytest>=7",
            "hypothesis>=6",
            "eql>=0.9",
            "luqum>=0.13",
            "splunk-appinspect>=4.3",
            # pySigma's Splunk and Kusto backends, for the comparison tests; they need pySigma
            # below 2.0. The Elasticsearch backend has its own environment (see .ci/run).
            "pysigma>=1.5,<2",
            "pysigma-backend-splunk==2.1.0",
            "pysigma-backend-kusto==1.0.1",
        ],
    },
    entry_points={"console_scripts": ["lsassdump = core.cli:main"]},
)
