"""Forms of the public pages. Field names are an interface: devices and tests post them."""

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    RadioField,
    SelectMultipleField,
    StringField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    AnyOf,
    DataRequired,
    Length,
    Optional,
    StopValidation,
    ValidationError,
)

from registration.models import EMAIL_MAX, JOB_TITLE_MAX, NAME_MAX, ORGANIZATION_MAX
from registration.services.registrations import Details
from registration.text import has_visible_character, is_single_line

#: RFC 5321 4.5.3.1.1: at most 64 octets before the @ (the whole address: EMAIL_MAX, 254).
LOCAL_PART_MAX = 64
#: Hiragana, katakana (full width after NFKC), the prolonged sound mark, middle dots and spaces.
KANA = re.compile(r"[\u3041-\u3096\u309d\u309e\u30a1-\u30fa\u30fc-\u30fe\u30fb\u3000 ]+")


class Form(FlaskForm):
    """A form whose hidden CSRF field has no id: a page holds several forms, and an id must be unique in it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "csrf_token" in self._fields:
            self.csrf_token.id = False  # the widget leaves out an attribute whose value is False


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _nfkc_strip(value: str | None) -> str | None:
    return unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else value


def single_line(form, field) -> None:
    """Refuse control characters and line or paragraph separators; any script and emoji are fine."""
    if not is_single_line(field.data or ""):
        raise ValidationError(_l("Control characters are not allowed here."))


def visible(form, field) -> None:
    """Text that shows nothing is empty: refused like an empty field where required, stored as "" where optional."""
    # Spaces are stripped by the filters; this catches what strip() leaves: zero-width characters, Hangul
    # fillers, the blank Braille cell and the like (registration/text.py). An optional field that looks empty
    # on screen is saved empty rather than refused with a message about characters the person cannot see.
    if isinstance(field.data, str) and field.data and not has_visible_character(field.data):
        field.errors[:] = []
        if field.flags.required:
            raise StopValidation(_l("Please fill in this field."))
        field.data = ""
        raise StopValidation()


def kana(form, field) -> None:
    """Refuse anything but katakana or hiragana (half-width katakana is widened first)."""
    if field.data and not KANA.fullmatch(field.data):
        raise ValidationError(_l("Please write this in katakana or hiragana."))


def email_address(form, field) -> None:
    """Check the lengths RFC 5321 allows and the syntax (no DNS lookups), and keep the normalised address."""
    if not field.data:
        return
    # email-validator checks the local part's length only with strict=True, and words both limits as a
    # generic syntax error; these checks come first so that each limit has its own message.
    if len(field.data.rpartition("@")[0].encode()) > LOCAL_PART_MAX:  # octets, as RFC 5321 counts them
        raise StopValidation(_l("The part before the @ may have at most %(max)d characters (a character outside "
                                "ASCII counts as two to four).", max=LOCAL_PART_MAX))
    if len(field.data.encode()) > EMAIL_MAX:  # SMTP counts bytes: an address outside ASCII is longer than it looks
        raise StopValidation(_l("An email address may have at most %(max)d characters (a character outside ASCII "
                                "counts as two to four).", max=EMAIL_MAX))
    try:
        result = validate_email(field.data, check_deliverability=False, strict=True)
    except EmailNotValidError:
        raise StopValidation(_l("Please enter a valid email address, e.g. taro@example.jp.")) from None
    field.data = result.normalized


def _max(limit: int) -> Length:
    return Length(max=limit, message=_l("Please use at most %(max)d characters."))


def _name(label, **kwargs):
    return StringField(label, filters=[_strip], validators=[
        DataRequired(_l("Please fill in this field.")), visible, _max(NAME_MAX), single_line], **kwargs)


def _kana(label):
    return StringField(label, filters=[_nfkc_strip], validators=[
        Optional(), visible, _max(NAME_MAX), single_line, kana])


def _email():
    # email_address before Length: it stops at the first problem with its own message; Length stays for the
    # input's maxlength attribute.
    return EmailField(_l("Email"), filters=[_nfkc_strip], validators=[
        DataRequired(_l("Please fill in this field.")), single_line, email_address, _max(EMAIL_MAX)])


#: Each language named in itself: whoever cannot read the page's language still finds their own.
LANGUAGE_CHOICES = [SelectChoice(code, name, render_kw={"lang": code}) for code, name in (("ja", "日本語"),
                                                                                         ("en", "English"))]


class DetailsForm(Form):
    """A person's details, as on the registration form and the personal page."""

    family_name = _name(_l("Family name"))
    given_name = _name(_l("Given name"))
    family_name_kana = _kana(_l("Family name (kana)"))
    given_name_kana = _kana(_l("Given name (kana)"))
    email = _email()
    organization = StringField(_l("Organization"), filters=[_strip], validators=[
        DataRequired(_l("Please fill in this field.")), visible, _max(ORGANIZATION_MAX), single_line])
    job_title = StringField(_l("Job title"), filters=[_strip], validators=[
        Optional(), visible, _max(JOB_TITLE_MAX), single_line])
    attend_closing = BooleanField(_l("I will attend the closing event in Odaiba on 14 Sep"))
    #: The language of the person's pages and mail. Missing (an older form, a device): the page's language.
    locale = RadioField(_l("Language for your pages and mail"), choices=LANGUAGE_CHOICES, validate_choice=False,
                        validators=[Optional(), AnyOf([choice.value for choice in LANGUAGE_CHOICES],
                                                      message=_l("Please choose 日本語 or English."))])

    def details(self) -> Details:
        """The validated values for the service."""
        return Details(
            family_name=self.family_name.data,
            given_name=self.given_name.data,
            family_name_kana=self.family_name_kana.data or "",
            given_name_kana=self.given_name_kana.data or "",
            email=self.email.data,
            organization=self.organization.data,
            job_title=self.job_title.data or "",
            attend_closing=bool(self.attend_closing.data),
        )


def offered_sessions(form, field) -> None:
    """Every chosen key must be a session the page offered: forged and withdrawn keys are refused by name."""
    field.data = list(dict.fromkeys(field.data or ()))  # a key sent twice is one choice
    unknown = [key for key in field.data if key not in form.offered_keys]
    if unknown:
        shown = ", ".join(key if key.isprintable() else repr(key) for key in unknown[:5])[:200]
        # gettext, not lazy_gettext: a lazy string declares itself HTML (__html__), so the keys someone posted would
        # reach the page unescaped. A plain str is escaped like any other text.
        raise ValidationError(gettext("These sessions are not in the program (any more): %(keys)s. "
                                      "Please choose again.", keys=shown))


def _sessions_field():
    return SelectMultipleField(_l("Sessions to watch"), validate_choice=False, validators=[offered_sessions])


class ProgramChoice:
    """A form with the `sessions` field; the view tells it which session keys the page offers."""

    offered_keys: frozenset[str] = frozenset()

    def offer(self, keys) -> None:
        """The keys of the sessions the page lists (the current program)."""
        self.offered_keys = frozenset(keys)


class RegistrationForm(ProgramChoice, DetailsForm):
    """The registration form: details, sessions to watch, and consent to the privacy policy."""

    sessions = _sessions_field()
    consent = BooleanField(validators=[DataRequired(_l("Please agree to the privacy policy to register."))])


class SessionsForm(ProgramChoice, Form):
    """The personal page's choice of sessions to watch (field `sessions`, repeated, values = session keys)."""

    sessions = _sessions_field()


class WatchForm(Form):
    """A watch button: the session's key, and the CSRF token."""

    session = HiddenField()


class LostLinkForm(Form):
    """Asks for an address to send the personal link to."""

    email = _email()


class LanguageForm(Form):
    """The language switch: a POST button, so that GET never changes anything."""

    lang = HiddenField()
    next = HiddenField()


class ConfirmForm(Form):
    """An empty form whose only job is the CSRF token of a POST button."""
