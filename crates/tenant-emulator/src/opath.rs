//! A small OPATH filter parser and evaluator for Get-Mailbox `-Filter`.
//!
//! Grammar (keywords case-insensitive; `-and` binds tighter than `-or`):
//! ```text
//! expr    := and ("-or" and)*
//! and     := unary ("-and" unary)*
//! unary   := "-not" unary | "(" expr ")" | compare
//! compare := Property op value        op := -eq -ne -gt -ge -lt -le -like -notlike
//! value   := 'single' | "double" | $true | $false | $null | bareword
//! ```
//! An outer `{ … }` (the old script-block form) is accepted.

use crate::clock::parse_opath_datetime;
use crate::model::{smtp_address, Mailbox, RecipientTypeDetails};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpathError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    IsExchangeCloudManaged,
    HiddenFromAddressListsEnabled,
    IsDirSynced,
    WhenChangedUtc,
    WhenCreatedUtc,
    RecipientTypeDetails,
    ExternalDirectoryObjectId,
    Guid,
    ExchangeGuid,
    Alias,
    Name,
    DisplayName,
    PrimarySmtpAddress,
    UserPrincipalName,
    EmailAddresses,
    CustomAttribute(usize),
    ExtensionCustomAttribute(usize),
}

enum FieldType {
    Bool,
    Date,
    Text,
    Multi,
    RecipientType,
}

impl Field {
    fn parse(name: &str) -> Option<Field> {
        let lower = name.to_ascii_lowercase();
        let numbered = |prefix: &str, max: usize| {
            lower
                .strip_prefix(prefix)
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| (1..=max).contains(n))
        };
        if let Some(n) = numbered("customattribute", 15) {
            return Some(Field::CustomAttribute(n - 1));
        }
        if let Some(n) = numbered("extensioncustomattribute", 5) {
            return Some(Field::ExtensionCustomAttribute(n - 1));
        }
        Some(match lower.as_str() {
            "isexchangecloudmanaged" => Field::IsExchangeCloudManaged,
            "hiddenfromaddresslistsenabled" => Field::HiddenFromAddressListsEnabled,
            "isdirsynced" => Field::IsDirSynced,
            "whenchangedutc" | "whenchanged" => Field::WhenChangedUtc,
            "whencreatedutc" | "whencreated" => Field::WhenCreatedUtc,
            "recipienttypedetails" => Field::RecipientTypeDetails,
            "externaldirectoryobjectid" => Field::ExternalDirectoryObjectId,
            "guid" => Field::Guid,
            "exchangeguid" => Field::ExchangeGuid,
            "alias" => Field::Alias,
            "name" => Field::Name,
            "displayname" => Field::DisplayName,
            "primarysmtpaddress" | "windowsemailaddress" => Field::PrimarySmtpAddress,
            "userprincipalname" => Field::UserPrincipalName,
            "emailaddresses" => Field::EmailAddresses,
            _ => return None,
        })
    }

    fn kind(self) -> FieldType {
        match self {
            Field::IsExchangeCloudManaged
            | Field::HiddenFromAddressListsEnabled
            | Field::IsDirSynced => FieldType::Bool,
            Field::WhenChangedUtc | Field::WhenCreatedUtc => FieldType::Date,
            Field::RecipientTypeDetails => FieldType::RecipientType,
            Field::EmailAddresses | Field::ExtensionCustomAttribute(_) => FieldType::Multi,
            _ => FieldType::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    NotLike,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Bool(bool),
    Date(i64),
    Text(String),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare {
        field: Field,
        op: Op,
        value: LiteralValue,
    },
}

/// A comparison's right-hand side, already converted to the property's type.
#[derive(Debug, Clone, PartialEq)]
pub struct LiteralValue(Literal);

impl LiteralValue {
    /// The instant (ticks) of a date value.
    pub fn as_date(&self) -> Option<i64> {
        match self.0 {
            Literal::Date(ticks) => Some(ticks),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Keyword(String),
    Quoted(String),
    Word(String),
}

fn syntax_error(filter: &str, position: usize) -> OpathError {
    OpathError(format!(
        "Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": \"Invalid filter syntax. For a description of the filter parameter syntax see the command help.\n\"{filter}\" at position {}.\"",
        position + 1
    ))
}

fn tokenize(filter: &str) -> Result<Vec<(Token, usize)>, OpathError> {
    let chars: Vec<(usize, char)> = filter.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&(pos, c)) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            tokens.push((if c == '(' { Token::Open } else { Token::Close }, pos));
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(syntax_error(filter, pos)),
                    Some(&(_, q)) if q == c => {
                        if chars.get(i + 1).map(|&(_, n)| n) == Some(c) {
                            text.push(c);
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(&(_, '`')) if c == '"' => {
                        if let Some(&(_, escaped)) = chars.get(i + 1) {
                            text.push(escaped);
                        }
                        i += 2;
                    }
                    Some(&(_, other)) => {
                        text.push(other);
                        i += 1;
                    }
                }
            }
            tokens.push((Token::Quoted(text), pos));
        } else {
            let start = i;
            while let Some(&(_, w)) = chars.get(i) {
                if w.is_whitespace()
                    || w == '('
                    || w == ')'
                    || ((w == '\'' || w == '"') && i > start)
                {
                    break;
                }
                i += 1;
            }
            let word: String = chars
                .get(start..i)
                .unwrap_or_default()
                .iter()
                .map(|&(_, ch)| ch)
                .collect();
            let is_keyword = word.starts_with('-')
                && word.chars().nth(1).is_some_and(|c| c.is_ascii_alphabetic());
            tokens.push((
                if is_keyword {
                    Token::Keyword(word.to_ascii_lowercase())
                } else {
                    Token::Word(word)
                },
                pos,
            ));
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    filter: &'a str,
    tokens: Vec<(Token, usize)>,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn position(&self) -> usize {
        self.tokens
            .get(self.at)
            .map_or(self.filter.len(), |(_, p)| *p)
    }

    fn error(&self) -> OpathError {
        syntax_error(self.filter, self.position())
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).map(|(t, _)| t.clone());
        self.at += 1;
        token
    }

    fn expr(&mut self) -> Result<Expr, OpathError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Keyword("-or".into())) {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, OpathError> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::Keyword("-and".into())) {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, OpathError> {
        match self.peek() {
            Some(Token::Keyword(k)) if k == "-not" => {
                self.at += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(Token::Open) => {
                self.at += 1;
                let inner = self.expr()?;
                if self.next() != Some(Token::Close) {
                    self.at = self.at.saturating_sub(1);
                    return Err(self.error());
                }
                Ok(inner)
            }
            _ => self.compare(),
        }
    }

    fn compare(&mut self) -> Result<Expr, OpathError> {
        let Some(Token::Word(name)) = self.peek().cloned() else {
            return Err(self.error());
        };
        let field = Field::parse(&name).ok_or_else(|| {
            OpathError(format!(
                "Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": \"'{name}' is not a recognized filterable property. For a description of the filter parameter syntax see the command help.\n\"{}\" at position {}.\"",
                self.filter,
                self.position() + 1
            ))
        })?;
        self.at += 1;
        let op = match self.peek() {
            Some(Token::Keyword(k)) => match k.as_str() {
                "-eq" => Op::Eq,
                "-ne" => Op::Ne,
                "-gt" => Op::Gt,
                "-ge" => Op::Ge,
                "-lt" => Op::Lt,
                "-le" => Op::Le,
                "-like" => Op::Like,
                "-notlike" => Op::NotLike,
                _ => return Err(self.error()),
            },
            _ => return Err(self.error()),
        };
        self.at += 1;
        let value_position = self.position();
        let raw = match self.next() {
            Some(Token::Quoted(s)) => Some(s),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("$null") => None,
            Some(Token::Word(w)) => Some(w),
            _ => {
                self.at = self.at.saturating_sub(1);
                return Err(self.error());
            }
        };
        let value = convert(field, op, raw, self.filter, value_position)?;
        Ok(Expr::Compare {
            field,
            op,
            value: LiteralValue(value),
        })
    }
}

fn convert(
    field: Field,
    op: Op,
    raw: Option<String>,
    filter: &str,
    position: usize,
) -> Result<Literal, OpathError> {
    let Some(raw) = raw else {
        return Ok(Literal::Null);
    };
    let ordering = matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le);
    let like = matches!(op, Op::Like | Op::NotLike);
    match field.kind() {
        FieldType::Bool => {
            if ordering || like {
                return Err(syntax_error(filter, position));
            }
            match raw.to_ascii_lowercase().as_str() {
                "true" | "$true" | "1" => Ok(Literal::Bool(true)),
                "false" | "$false" | "0" => Ok(Literal::Bool(false)),
                _ => Err(OpathError(format!(
                    "Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": \"The value \"{raw}\" could not be converted to type System.Boolean.\""
                ))),
            }
        }
        FieldType::Date => {
            if like {
                return Err(syntax_error(filter, position));
            }
            parse_opath_datetime(&raw).map(Literal::Date).ok_or_else(|| {
                OpathError(format!(
                    "Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": \"The value \"{raw}\" could not be converted to type System.DateTime.\""
                ))
            })
        }
        FieldType::RecipientType => {
            if ordering {
                return Err(syntax_error(filter, position));
            }
            if !like
                && RecipientTypeDetails::parse(&raw).is_none()
                && !is_other_recipient_type(&raw)
            {
                return Err(OpathError(format!(
                    "Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": \"The value \"{raw}\" could not be converted to type Microsoft.Exchange.Data.Directory.Recipient.RecipientTypeDetails.\""
                )));
            }
            Ok(Literal::Text(raw))
        }
        FieldType::Text | FieldType::Multi => Ok(Literal::Text(raw)),
    }
}

/// Valid RecipientTypeDetails names that no mailbox in the emulator has (filters on them are legal
/// and simply match nothing).
fn is_other_recipient_type(name: &str) -> bool {
    [
        "MailUser",
        "LinkedMailbox",
        "SchedulingMailbox",
        "TeamMailbox",
        "DiscoveryMailbox",
        "GuestMailUser",
        "GroupMailbox",
        "RemoteUserMailbox",
    ]
    .iter()
    .any(|n| n.eq_ignore_ascii_case(name))
}

pub fn parse(filter: &str) -> Result<Expr, OpathError> {
    let trimmed = filter.trim();
    let body = trimmed
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(trimmed);
    let tokens = tokenize(body)?;
    if tokens.is_empty() {
        return Err(syntax_error(filter, 0));
    }
    let mut parser = Parser {
        filter: body,
        tokens,
        at: 0,
    };
    let expr = parser.expr()?;
    if parser.at < parser.tokens.len() {
        return Err(parser.error());
    }
    Ok(expr)
}

/// PowerShell `-like`: `*` any run, `?` one character, case-insensitive.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|c| *c == '*')
}

fn compare_text(op: Op, actual: &str, wanted: &str) -> bool {
    let a = actual.to_lowercase();
    let w = wanted.to_lowercase();
    match op {
        Op::Eq => a == w,
        Op::Ne => a != w,
        Op::Gt => a > w,
        Op::Ge => a >= w,
        Op::Lt => a < w,
        Op::Le => a <= w,
        Op::Like => wildcard_match(wanted, actual),
        Op::NotLike => !wildcard_match(wanted, actual),
    }
}

fn text_of(field: Field, m: &Mailbox) -> &str {
    match field {
        Field::RecipientTypeDetails => m.recipient_type_details.as_str(),
        Field::ExternalDirectoryObjectId => &m.user_id,
        Field::Guid => &m.guid,
        Field::ExchangeGuid => &m.exchange_guid,
        Field::Alias => &m.alias,
        Field::Name => &m.name,
        Field::DisplayName => &m.display_name,
        Field::PrimarySmtpAddress => m.primary_smtp().unwrap_or_default(),
        Field::UserPrincipalName => &m.user_principal_name,
        Field::CustomAttribute(i) => m.custom_attributes.get(i).map_or("", String::as_str),
        _ => "",
    }
}

impl Expr {
    pub fn matches(&self, m: &Mailbox) -> bool {
        match self {
            Expr::And(a, b) => a.matches(m) && b.matches(m),
            Expr::Or(a, b) => a.matches(m) || b.matches(m),
            Expr::Not(a) => !a.matches(m),
            Expr::Compare { field, op, value } => compare(*field, *op, &value.0, m),
        }
    }
}

fn compare(field: Field, op: Op, value: &Literal, m: &Mailbox) -> bool {
    match field.kind() {
        FieldType::Bool => {
            let actual = match field {
                Field::IsExchangeCloudManaged => m.is_exchange_cloud_managed,
                Field::HiddenFromAddressListsEnabled => m.hidden_from_address_lists,
                _ => m.is_dir_synced,
            };
            match (op, value) {
                (Op::Eq, Literal::Bool(b)) => actual == *b,
                (Op::Ne, Literal::Bool(b)) => actual != *b,
                (Op::Ne, Literal::Null) => true,
                _ => false,
            }
        }
        FieldType::Date => {
            let actual = if field == Field::WhenChangedUtc {
                m.when_changed
            } else {
                m.when_created
            };
            let Literal::Date(wanted) = value else {
                return op == Op::Ne;
            };
            match op {
                Op::Eq => actual == *wanted,
                Op::Ne => actual != *wanted,
                Op::Gt => actual > *wanted,
                Op::Ge => actual >= *wanted,
                Op::Lt => actual < *wanted,
                Op::Le => actual <= *wanted,
                Op::Like | Op::NotLike => false,
            }
        }
        FieldType::Multi => {
            let values: &[String] = match field {
                Field::ExtensionCustomAttribute(i) => m
                    .extension_custom_attributes
                    .get(i)
                    .map_or(&[], Vec::as_slice),
                _ => &m.email_addresses,
            };
            let Literal::Text(wanted) = value else {
                return (op == Op::Eq) == values.is_empty();
            };
            let any = |inner: Op| {
                values.iter().any(|v| {
                    compare_text(inner, v, wanted)
                        || (field == Field::EmailAddresses
                            && smtp_address(v).is_some_and(|a| compare_text(inner, a, wanted)))
                })
            };
            match op {
                Op::Ne => !any(Op::Eq),
                Op::NotLike => !any(Op::Like),
                other => any(other),
            }
        }
        FieldType::Text | FieldType::RecipientType => {
            let actual = text_of(field, m);
            match value {
                Literal::Text(wanted) => compare_text(op, actual, wanted),
                Literal::Null => (op == Op::Eq) == actual.is_empty(),
                _ => false,
            }
        }
    }
}

#[cfg(test)]
#[path = "opath_tests.rs"]
mod tests;
