"""Staff forms."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional

from registration.public.forms import DetailsForm


class LoginForm(FlaskForm):
    """Staff sign-in."""

    name = StringField(_l("Staff name"), validators=[DataRequired(_l("Please fill in this field.")), Length(max=80)])
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Please fill in this field.")),
                                                         Length(max=200)])
    next = HiddenField()


class WalkInForm(DetailsForm):
    """A person registered at the door by an admin after the deadline."""

    email = EmailField(_l("Email"), validators=[Optional(), Length(max=254)])
    attend_closing = BooleanField(default=True)
