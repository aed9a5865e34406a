"""The command's CSV reader gives the same records as splunklib's own reader."""

import io
import sys

import pytest
from splunklib.searchcommands.search_command import SearchCommand

from splunk_support import REPO_ROOT
from splunkd_stub import encode_records

sys.path.append(str(REPO_ROOT / "splunk_app" / "lib"))
from lsassdump_splunk.records import read_records  # noqa: E402

BODIES = {
    "empty": "",
    "header-only": "a,b,__mv_a,__mv_b\r\n",
    "no-multivalue-columns": "a,b\r\n1,2\r\n3,\r\n",
    "multivalue": encode_records([{"a": ["x$y", "z"], "b": "1"}, {"a": "plain", "c": ["p", "q", "r"]}]).decode(),
    "multivalue-only-column": "a,__mv_a,__mv_b\r\n1,,$u$;$v$\r\n2,,\r\n",
    "repeated-column": "a,a,__mv_a\r\nfirst,second,\r\n",
    "short-row": "a,b,__mv_a,__mv_b\r\n1\r\n1,2,$p$;$q$\r\n",
    "quoted-newlines": 'a,__mv_a\r\n"line one\nline two",\r\n',
    "unicode": encode_records([{"CommandLine": "procdump \u2014ma lsass \U0001f600"}]).decode(),
}


def splunklib_records(body):
    return list(SearchCommand()._read_csv_records(io.StringIO(body)))


@pytest.mark.parametrize("name", sorted(BODIES))
def test_reader_matches_splunklib(name):
    body = BODIES[name]
    ours = list(read_records(io.StringIO(body), SearchCommand._decode_list))

    assert [dict(record) for record in ours] == [dict(record) for record in splunklib_records(body)]
