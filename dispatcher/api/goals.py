"""/api/v1/goals: the owner's goals, their trees, and dispatching everything marked."""

from __future__ import annotations

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from dispatcher.api import auth, problems
from dispatcher.dispatch.service import dispatch_goal
from dispatcher.extensions import db
from dispatcher.models import Goal
from dispatcher.planning import tree
from dispatcher.schemas.goals import GoalCreateSchema, GoalSchema, GoalUpdateSchema
from dispatcher.schemas.jobs import DispatchSchema, GoalTreeSchema
from dispatcher.scoping import get_owned, owned

blp = Blueprint(
    "Goals",
    __name__,
    url_prefix="/api/v1",
    description="Measurable goals, their job trees with derived status, and their budgets.",
)
auth.protect(blp)
problems.install(blp)


def _goal(goal_id: int) -> Goal:
    return get_owned(Goal, goal_id, auth.owner_id())


@blp.route("/goals")
class Goals(MethodView):
    @blp.response(200, GoalSchema(many=True))
    def get(self):
        """List my goals, with progress"""
        return db.session.scalars(owned(Goal, auth.owner_id()).order_by(Goal.id)).all()

    @blp.arguments(GoalCreateSchema)
    @blp.response(201, GoalSchema)
    def post(self, data: dict):
        """Create a goal

        Money is in integer cents of the goal's currency (USD unless given).
        """
        goal = tree.create_goal(auth.owner_id(), actor=auth.ACTOR, **data)
        return goal, {"Location": url_for("Goals.GoalItem", goal_id=goal.id)}


@blp.route("/goals/<int:goal_id>")
class GoalItem(MethodView):
    @blp.response(200, GoalSchema)
    @blp.alt_response(404, description="No such goal (or not yours)")
    def get(self, goal_id: int):
        """Get a goal, with progress and money"""
        return _goal(goal_id)

    @blp.arguments(GoalUpdateSchema)
    @blp.response(200, GoalSchema)
    @blp.alt_response(404, description="No such goal (or not yours)")
    @blp.alt_response(
        422,
        description="Invalid fields, or a budget below what is already reserved and spent, "
        "or a new currency while money is held in the old one (nothing is changed)",
    )
    def patch(self, data: dict, goal_id: int):
        """Change a goal (only the fields sent)

        The budget cannot go below `reserved_cents + spent_cents`, and the currency cannot
        change while any money is reserved or spent.
        """
        return tree.update_goal(_goal(goal_id), actor=auth.ACTOR, **data)


@blp.route("/goals/<int:goal_id>/tree")
@blp.response(200, GoalTreeSchema)
@blp.alt_response(404, description="No such goal (or not yours)")
def goal_tree(goal_id: int):
    """The goal's jobs as a tree

    Each node has its status (a parent's is derived from its leaves) and the rollup of its
    subtree: leaves done, estimates, money reserved and spent.
    """
    goal = _goal(goal_id)
    return {"goal_id": goal.id, "progress": tree.goal_progress(goal), "jobs": tree.goal_tree(goal)}


@blp.route("/goals/<int:goal_id>/dispatch", methods=["POST"])
@blp.response(202, DispatchSchema(many=True))
@blp.alt_response(404, description="No such goal (or not yours)")
@blp.alt_response(409, description="Over budget, or a job cannot go to its channel")
def dispatch_all(goal_id: int):
    """Dispatch every delegated leaf that is still draft or ready

    All or nothing: money for all of them is reserved in one transaction, or none is. Each
    job is queued; workers push it to its channel.
    """
    return dispatch_goal(_goal(goal_id), actor=auth.ACTOR)
