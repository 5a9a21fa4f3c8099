"""People: the owner's directory of teammates, their scorecards, and what they are paid.

`directory` adds, edits and archives people (the rules the page and the API share),
`scorecard` computes each person's figures from the assignments that name them,
`delegate` points a job at a person, and `pay` records money paid for accepted work.
"""
