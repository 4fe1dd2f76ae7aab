"""Collie's quick start (implicit MovieLens 100K) with ``collie`` replaced by ``recstack.collie``.

Reads ML-100K from ``$DATA_PATH/ml-100k/`` or from an installed ``recbole`` wheel
(``pip install --no-deps recbole``). Prints AUC, MRR and MAP@10 on the validation split and the fit time.
"""

import time

from recstack.collie.cross_validation import stratified_split
from recstack.collie.interactions import Interactions
from recstack.collie.metrics import auc, evaluate_in_batches, mapk, mrr
from recstack.collie.model import CollieTrainer, MatrixFactorizationModel
from recstack.collie.movielens import read_movielens_df
from recstack.collie.utils import convert_to_implicit

# read in explicit MovieLens 100K data
df = read_movielens_df()

# convert the data to implicit
df_imp = convert_to_implicit(df)

# store data as ``Interactions``
interactions = Interactions(users=df_imp["user_id"], items=df_imp["item_id"], allow_missing_ids=True)

# perform a data split
train, val = stratified_split(interactions)

# train an implicit ``MatrixFactorization`` model
model = MatrixFactorizationModel(train=train, val=val, embedding_dim=10, lr=1e-1, loss="adaptive", optimizer="adam")
trainer = CollieTrainer(model, max_epochs=10)
start = time.perf_counter()
trainer.fit(model)
fit_seconds = time.perf_counter() - start
model.eval()

# evaluate the model
auc_score, mrr_score, mapk_score = evaluate_in_batches(metric_list=[auc, mrr, mapk], test_interactions=val, model=model)

print(f"AUC:          {auc_score}")
print(f"MRR:          {mrr_score}")
print(f"MAP@10:       {mapk_score}")
print(f"fit seconds:  {fit_seconds:.1f}")
