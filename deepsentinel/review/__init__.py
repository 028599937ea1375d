"""Plan review: changes, risks, offline cost and the checkov policy gate, rendered as one markdown report.

diff.py (what changed), risks.py (why it matters), cost.py (price table x usage), policy.py (checkov +
baseline), report.py (markdown), command.py (`deepsentinel review`). Only command.py and policy.py import
anything heavy, and only inside functions.
"""
