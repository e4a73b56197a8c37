"""Staff forms."""

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from registration.public.forms import Form, RegistrationForm


class LoginForm(Form):
    """Staff sign-in."""

    name = StringField(_l("Staff name"), validators=[DataRequired(_l("Please fill in this field.")), Length(max=80)])
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Please fill in this field.")),
                                                         Length(max=200)])
    next = HiddenField()


class WalkInForm(RegistrationForm):
    """A person registered at the door by an admin after the deadline (consent given to the admin)."""
