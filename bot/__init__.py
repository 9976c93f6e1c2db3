"""``adopter bot``: the GitHub Action's door onto the core.

On a push it takes the changed Python files (``changes``), runs the check, fix and verify
machinery on them (``patches``), and either reports (annotations, job summary, SARIF) or
commits the kept patches on ``adopter/<base-branch>`` and opens or updates one pull request
(``gitops``, ``pulls``).  The Actions runner interface lives in ``actions``; the PR body and
job summary in ``render``; ``main`` turns errors into messages and exit codes.

Only this package imports PyGithub; the core never imports it.
"""
