"""Budget: the environment's cost guard, an AWS Budgets monthly cost budget that notifies the alerts topic.

Dev and prod share one account, so each budget is filtered to its environment by the cost-allocation tag
that every resource carries through the provider's default tags (`Environment`, settings.common_tags).
AWS Budgets filters user-defined tags as `user:<key>$<value>` ("TagKeyValue" in the Budgets API's
CostFilters), and only once the tag is activated as a cost-allocation tag in the Billing console: until
then the budget sees no cost at all (docs/platform.md: cost guard).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_aws.budgets_budget import BudgetsBudget, BudgetsBudgetCostFilter, BudgetsBudgetNotification
from constructs import Construct

from deepsentinel.settings import PlatformSettings

COST_ALLOCATION_TAG = "Environment"


def cost_filter_value(settings: PlatformSettings) -> str:
    """`user:Environment$dev`: the TagKeyValue of the environment's resources."""
    return f"user:{COST_ALLOCATION_TAG}${settings.common_tags[COST_ALLOCATION_TAG]}"


@dataclass(frozen=True, kw_only=True)
class BudgetProps:
    settings: PlatformSettings
    alerts_topic_arn: str
    alerts_topic_ready: list[ITerraformDependable]  # the topic's policy that lets AWS Budgets publish


class Budget(Construct):
    budget_name: str

    def __init__(self, scope: Construct, id_: str, *, props: BudgetProps) -> None:
        super().__init__(scope, id_)
        s = props.settings
        emails = [s.budget_email] if s.budget_email else None
        notifications = [("ACTUAL", percent) for percent in s.budget_thresholds_percent]
        if s.budget_forecast_percent is not None:
            notifications.append(("FORECASTED", s.budget_forecast_percent))
        budget = BudgetsBudget(
            self,
            "budget",
            name=s.prefix,
            budget_type="COST",
            time_unit="MONTHLY",
            limit_amount=str(s.budget_monthly_usd),
            limit_unit="USD",
            cost_filter=[BudgetsBudgetCostFilter(name="TagKeyValue", values=[cost_filter_value(s)])],
            notification=[
                BudgetsBudgetNotification(
                    notification_type=kind,
                    comparison_operator="GREATER_THAN",
                    threshold=percent,
                    threshold_type="PERCENTAGE",
                    subscriber_sns_topic_arns=[props.alerts_topic_arn],
                    subscriber_email_addresses=emails,
                )
                for kind, percent in notifications
            ],
            depends_on=props.alerts_topic_ready or None,
        )
        self.budget_name = budget.name
