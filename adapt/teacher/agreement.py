"""The label-free check of the teacher: does its order have anything in common with the
student's? The pipeline warns on it and every report shows it, so both read one threshold."""

import numpy as np

NOISE_TAU = 0.05  # below this teacher-student agreement the teacher looks like noise


def agreement_with_student(candidates: list[dict], pointwise: list[dict]) -> dict:
    """Label-free check of the teacher: mean Kendall tau between its scores and the student's
    over each query's candidates. A teacher that knows the domain agrees with a decent student
    more than chance; tau near 0 means its scores look like noise to everything we can see."""
    from scipy.stats import kendalltau

    scored = {r["query_id"]: dict(zip(r["docs"], r["scores"])) for r in pointwise}
    taus = []
    for row in candidates:
        teacher = scored[row["query_id"]]
        student = [score for _, score in row["hits"]]
        if len(student) > 1:
            tau = kendalltau(student, [teacher[d] for d, _ in row["hits"]]).statistic
            if tau == tau:  # NaN when either side is constant
                taus.append(float(tau))
    return {"queries": len(taus), "teacher_student_tau": float(np.mean(taus)) if taus else None}
