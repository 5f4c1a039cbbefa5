"""The stages of one adaptation, one module each, in the order a run calls them:

    start       the student adaptation begins from (a fresh head fitted to the corpus)
    index       the corpus encoded by an iteration's student
    evaluate    its metrics on the judged queries          baselines   BM25 and the bi-encoder
    generate    queries the teacher writes (corpus-only runs)
    candidates  each adaptation query's top-k
    score       the teacher's pointwise scores of the candidates
    targets     what the student is pulled toward, per query
    pairs       each query's KD group and pair targets
    train       the next iteration's student
    guard       the label-free check: which checkpoint to use without qrels

Each module has one entry function (typed records in, records keyed by query and document ids
out) and says what its output depends on (`fingerprint`). adapt/pipeline.py orders them and
skips a stage whose output matches; `adapt train`, `adapt score`, `adapt bench` and
`adapt teacher-eval` call the same entry functions.
"""
