"""Infracost-style cost lines: each priced resource's monthly cost before and after, the change and its share of
the stack, in the markdown (the largest changes and a total; every resource in the full report) and in --json.

Every expected figure is worked out by hand below from PRICES and USAGE (not from the code under test): a month
is 730 hours, the usage file's videos_per_month multiplies the per-video costs, and a resource's line is its fixed
charges at the usage file's assumptions plus the per-video charges the estimate attributes to it.
"""

from __future__ import annotations

import copy

import pytest

from deepsentinel.review.cost import PriceTable, Usage, estimate, resource_costs
from deepsentinel.review.diff import diff_documents
from deepsentinel.review.report import Review, render, review_data
from deepsentinel.review.risks import assess

from .conftest import STACK, base_document, head_document

PRICES = """
version = "test-1"
region = "ap-northeast-2"
currency = "USD"
hours_per_month = 730
[price.nat_gateway_hour]
usd = 0.05
unit = "hour"
source = "test"
date = "2026-11-01"
[price.nat_gateway_gb]
usd = 0.05
unit = "GB"
source = "test"
date = "2026-11-01"
[price."rds_postgres.db.t3.micro"]
usd = 0.02
unit = "hour"
source = "test"
date = "2026-11-01"
[price."rds_postgres.db.t3.small"]
usd = 0.04
unit = "hour"
source = "test"
date = "2026-11-01"
[price.rds_gp3_gb_month]
usd = 0.1
unit = "GB-month"
source = "test"
date = "2026-11-01"
[price.secretsmanager_secret_month]
usd = 0.4
unit = "secret-month"
source = "test"
date = "2026-11-01"
[price.s3_standard_gb_month]
usd = 0.02
unit = "GB-month"
source = "test"
date = "2026-11-01"
[price.s3_put_1k]
usd = 0.005
unit = "1,000 requests"
source = "test"
date = "2026-11-01"
[price.s3_get_1k]
usd = 0.0004
unit = "1,000 requests"
source = "test"
date = "2026-11-01"
[price.lambda_gb_second]
usd = 0.00001
unit = "GB-second"
source = "test"
date = "2026-11-01"
[price.lambda_request]
usd = 0.0000002
unit = "request"
source = "test"
date = "2026-11-01"
[price.sqs_request]
usd = 0.0000004
unit = "request"
source = "test"
date = "2026-11-01"
"""

USAGE = """
[workload]
videos_per_month = 1000
lambda_invocations_per_video = 1
lambda_duration_ms = 1000
sqs_requests_per_video = 4
s3_put_requests_per_video = 10
s3_get_requests_per_video = 10
[services]
nat_gb_per_month = 100
[resource."storage/highlights"]
storage_gb = 100
[resource."storage/raw-videos"]
storage_gb = 50
"""

# By hand (730 h a month, 1,000 videos):
NAT = 730 * 0.05 + 100 * 0.05  # 36.50 + 5.00 = 41.50: hours, and the usage file's 100 GB of NAT data
DB_BEFORE = 730 * 0.02 + 20 * 0.1 + 0.4  # db.t3.micro 14.60 + gp3 20 GB 2.00 + managed password secret 0.40 = 17.00
DB_AFTER = 730 * 0.04 + 20 * 0.1 + 0.4  # db.t3.small 29.20 + 2.00 + 0.40 = 31.60
HIGHLIGHTS = 100 * 0.02  # 100 GB Standard (usage file) = 2.00; removed by the head
# raw-videos: 50 GB Standard = 1.00, plus the per-video S3 requests the first bucket carries:
# (10 PUT x 0.005 + 10 GET x 0.0004) / 1,000 = 0.000054 a video, x 1,000 videos = 0.054
RAW = 50 * 0.02 + (10 * 0.005 + 10 * 0.0004) / 1000 * 1000
# the queue-fed function: 1 invocation x 1 s x 256 MB = 0.25 GB-s x 0.00001 + 1 request x 0.0000002
# = 0.0000027 a video, x 1,000 = 0.0027
LAMBDA = (1 * 1.0 * 0.25 * 0.00001 + 0.0000002) * 1000
SQS = 4 * 0.0000004 * 1000  # 4 requests a video = 0.0016
BASE_TOTAL = NAT + DB_BEFORE + HIGHLIGHTS + RAW + LAMBDA + SQS  # 61.5583
HEAD_TOTAL = NAT + DB_AFTER + RAW + LAMBDA + SQS  # 74.1583


@pytest.fixture(scope="module")
def review(tmp_path_factory) -> Review:
    root = tmp_path_factory.mktemp("cost-lines")
    (root / "prices.toml").write_text(PRICES)
    (root / "usage.toml").write_text(USAGE)
    prices, usage = PriceTable.load(root / "prices.toml"), Usage.load(root / "usage.toml")
    base, head = base_document(), head_document()
    diff = diff_documents(STACK, base, head)
    return Review("base", "head", [diff], assess(diff, base, head, prod=False),
                  {STACK: estimate(STACK, head, prices, usage)}, {STACK: estimate(STACK, base, prices, usage)},
                  prices, "usage.toml", None)


def test_each_priced_resource_has_its_monthly_cost_before_and_after(review):
    rows = {r.address: r for r in resource_costs(STACK, review.costs[STACK], review.base_costs[STACK])}
    expected = {  # address: (before, after)
        "aws_nat_gateway.network_nat-0": (NAT, NAT),
        "aws_db_instance.storage_db": (DB_BEFORE, DB_AFTER),
        "aws_s3_bucket.storage_highlights": (HIGHLIGHTS, None),
        "aws_s3_bucket.storage_raw-videos": (RAW, RAW),
        "aws_lambda_function.pipeline_sqs_to_batch": (LAMBDA, LAMBDA),
        "aws_sqs_queue.pipeline_jobs-queue": (SQS, SQS),
    }
    assert set(rows) == set(expected)
    for address, (before, after) in expected.items():
        row = rows[address]
        assert row.before == pytest.approx(before), address
        assert row.after == (None if after is None else pytest.approx(after)), address
    db = rows["aws_db_instance.storage_db"]
    assert db.delta == pytest.approx(14.60)
    assert db.share == pytest.approx(100 * 31.60 / 74.1583)  # 42.61 % of the head stack
    assert rows["aws_nat_gateway.network_nat-0"].share == pytest.approx(100 * 41.50 / 74.1583)
    assert rows["aws_s3_bucket.storage_highlights"].delta == pytest.approx(-2.00)
    assert rows["aws_s3_bucket.storage_highlights"].share is None  # not in the head
    assert db.path == "storage/db" and db.module == "storage"


def test_the_lines_add_up_to_the_stack_totals(review):
    rows = resource_costs(STACK, review.costs[STACK], review.base_costs[STACK])
    assert sum(r.after or 0.0 for r in rows) == pytest.approx(HEAD_TOTAL)
    assert sum(r.before or 0.0 for r in rows) == pytest.approx(BASE_TOTAL)
    assert review.costs[STACK].total == pytest.approx(HEAD_TOTAL)
    assert sum(r.share or 0.0 for r in rows) == pytest.approx(100.0)


def test_largest_change_first(review):
    rows = resource_costs(STACK, review.costs[STACK], review.base_costs[STACK])
    assert [r.address for r in rows[:2]] == ["aws_db_instance.storage_db", "aws_s3_bucket.storage_highlights"]
    assert all(r.delta == pytest.approx(0.0) for r in rows[2:])


def test_a_new_stack_has_no_before(review):
    rows = resource_costs(STACK, review.costs[STACK], None)
    assert all(r.before is None for r in rows)
    assert {r.address: r.delta for r in rows}["aws_db_instance.storage_db"] == pytest.approx(DB_AFTER)


def test_the_usage_file_drives_usage_based_prices(tmp_path, review):
    """Doubling the NAT data and the videos moves only the usage-based lines."""
    (tmp_path / "prices.toml").write_text(PRICES)
    (tmp_path / "usage.toml").write_text(USAGE.replace("nat_gb_per_month = 100", "nat_gb_per_month = 200")
                                         .replace("videos_per_month = 1000", "videos_per_month = 2000"))
    prices, usage = PriceTable.load(tmp_path / "prices.toml"), Usage.load(tmp_path / "usage.toml")
    head = estimate(STACK, head_document(), prices, usage)
    rows = {r.address: r for r in resource_costs(STACK, head, None)}
    assert rows["aws_nat_gateway.network_nat-0"].after == pytest.approx(36.50 + 200 * 0.05)  # 46.50
    assert rows["aws_s3_bucket.storage_raw-videos"].after == pytest.approx(1.00 + 0.000054 * 2000)  # 1.108
    assert rows["aws_sqs_queue.pipeline_jobs-queue"].after == pytest.approx(0.0000016 * 2000)  # 0.0032
    assert rows["aws_db_instance.storage_db"].after == pytest.approx(DB_AFTER)  # no usage in it


def test_markdown_lines_and_total(review):
    text = render(review)
    db = ("| `storage/db`<br><sub>`aws_db_instance.storage_db`</sub> | deepsentinel-dev | $17.00 | $31.60 | "
          "**+$14.60** | 42.6% |")
    highlights = ("| `storage/highlights`<br><sub>`aws_s3_bucket.storage_highlights`</sub> | deepsentinel-dev | "
                  "$2.00 | — (removed) | **−$2.00** | — |")
    total = "| **total** | deepsentinel-dev | $61.56 | $74.16 | **+$12.60** | 100% |"
    top = text.index("**By resource**")
    assert text.index(db, top) < text.index(highlights, top) < text.index(total, top)
    # the full report lists every priced resource, unchanged ones included
    assert "<summary>All 6 priced resources</summary>" in text
    assert ("| `network/nat-0`<br><sub>`aws_nat_gateway.network_nat-0`</sub> | deepsentinel-dev | $41.50 | $41.50 | "
            "**±$0.00** | 56.0% |") in text


def test_the_comment_shows_the_top_changes_and_counts_the_rest(review):
    text = render(review, cost_rows=1)
    assert "**+$14.60**" in text
    assert "aws_s3_bucket.storage_highlights`</sub> | deepsentinel-dev | $2.00" not in text
    assert "| **total** | deepsentinel-dev | $61.56 | $74.16 | **+$12.60** | 100% |" in text
    assert "5 more priced resources (1 of them changing) are in the full report" in text
    assert "All 6 priced resources" not in text


def test_unchanged_costs_say_so(review):
    same = copy.copy(review)
    same.base_costs = {STACK: review.costs[STACK]}
    assert "No priced resource changes its monthly cost." in render(same, cost_rows=10)


def test_json_lines(review):
    rows = review_data(review)["cost"]["resources"]
    assert len(rows) == 6
    assert rows[0] == {"stack": STACK, "address": "aws_db_instance.storage_db", "path": "storage/db",
                       "module": "storage", "before": pytest.approx(17.0), "after": pytest.approx(31.6),
                       "delta": pytest.approx(14.6), "share_percent": pytest.approx(100 * 31.6 / 74.1583, abs=1e-5),
                       "items": ["db.t3.small Single-AZ 730 h", "gp3 20 GB Single-AZ", "RDS-managed master password secret"]}
    assert rows[1]["after"] is None and rows[1]["share_percent"] is None and rows[1]["delta"] == pytest.approx(-2.0)
