"""Head anatomy: what a head's weights do, and how its attention scores come about.

- `qk_ov_svd` / `HeadSVD`: QK and OV spectra of a head and their token readouts;
- `decompose_score`, `upstream_contributions`, `firing_pairs`: one attention score split into
  singular components and the upstream writers that feed them;
- `head_taxonomy` / `HeadTaxonomy`: previous-token, duplicate-token, induction ... scores and
  clusters;
- `entropy_collapse` / `EntropyCollapse`: attention entropy against the QK spectral norm over
  training snapshots.

Helpers: `linalg` (factored SVD, effective ranks), `residual` (the attention input of a
prompt), `probe_data` (default natural texts), `label_placement` (scatter labels).
"""

from analysis.anatomy.entropy_collapse import (
    EntropyCollapse,
    entropy_collapse,
    entropy_collapse_view,
)
from analysis.anatomy.head_svd import HeadSVD, qk_ov_svd
from analysis.anatomy.score_decomposition import (
    ScoreDecomposition,
    UpstreamContributions,
    decompose_score,
    firing_pairs,
    upstream_contributions,
)
from analysis.anatomy.taxonomy import HeadTaxonomy, head_taxonomy

__all__ = [
    "EntropyCollapse",
    "HeadSVD",
    "HeadTaxonomy",
    "ScoreDecomposition",
    "UpstreamContributions",
    "decompose_score",
    "entropy_collapse",
    "entropy_collapse_view",
    "firing_pairs",
    "head_taxonomy",
    "qk_ov_svd",
    "upstream_contributions",
]
