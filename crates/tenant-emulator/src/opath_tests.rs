use super::*;
use crate::model::{Mailbox, RecipientTypeDetails};

fn mailbox(alias: &str, cloud: bool, changed: i64) -> Mailbox {
    Mailbox {
        guid: format!("guid-{alias}"),
        exchange_guid: String::new(),
        user_id: format!("user-{alias}"),
        alias: alias.to_owned(),
        name: alias.to_owned(),
        display_name: alias.to_uppercase(),
        user_principal_name: format!("{alias}@contoso.com"),
        email_addresses: vec![
            format!("SMTP:{alias}@contoso.com"),
            format!("smtp:{alias}@contoso.onmicrosoft.com"),
        ],
        custom_attributes: Default::default(),
        extension_custom_attributes: Default::default(),
        hidden_from_address_lists: false,
        recipient_type_details: RecipientTypeDetails::UserMailbox,
        is_exchange_cloud_managed: cloud,
        is_dir_synced: true,
        when_created: 0,
        when_changed: changed,
    }
}

fn eval(filter: &str, m: &Mailbox) -> bool {
    parse(filter)
        .unwrap_or_else(|e| panic!("{filter}: {}", e.0))
        .matches(m)
}

#[test]
fn and_binds_tighter_than_or() {
    let m = mailbox("a", false, 0);
    // false -or (true -and false) = false; (false -or true) -and false would also be false, so
    // use a case where the two readings differ: true -or (false -and false) = true.
    assert!(eval(
        "Alias -eq 'a' -or Alias -eq 'b' -and Alias -eq 'c'",
        &m
    ));
    assert!(!eval(
        "(Alias -eq 'a' -or Alias -eq 'b') -and Alias -eq 'c'",
        &m
    ));
}

#[test]
fn not_and_nesting() {
    let m = mailbox("a", true, 0);
    assert!(eval("-not IsExchangeCloudManaged -eq $false", &m));
    assert!(eval("-not (-not (IsExchangeCloudManaged -eq 'True'))", &m));
    assert!(!eval("-NOT(IsExchangeCloudManaged -eq 'True')", &m));
}

#[test]
fn quoting_rules() {
    let mut m = mailbox("o'brien", false, 0);
    m.custom_attributes[0] = "say \"hi\"".to_owned();
    assert!(eval("Alias -eq 'o''brien'", &m));
    assert!(eval("CustomAttribute1 -eq \"say `\"hi`\"\"", &m));
    assert!(eval("CustomAttribute1 -eq 'say \"hi\"'", &m));
    assert!(eval("CustomAttribute2 -eq $null", &m));
    assert!(eval("CustomAttribute1 -ne $null", &m));
}

#[test]
fn wildcards_and_multi_values() {
    let m = mailbox("alice", false, 0);
    assert!(eval("PrimarySmtpAddress -like '*@contoso.com'", &m));
    assert!(eval("DisplayName -like 'al?ce'", &m));
    assert!(eval("Alias -notlike 'bob*'", &m));
    assert!(eval("EmailAddresses -eq 'SMTP:ALICE@contoso.com'", &m));
    assert!(eval("EmailAddresses -like '*onmicrosoft*'", &m));
    assert!(eval("EmailAddresses -ne 'bob@contoso.com'", &m));
    assert!(!eval("EmailAddresses -ne 'alice@contoso.com'", &m));
}

#[test]
fn error_positions_point_at_the_problem() {
    let err = parse("Alias -eq 'a' -and -or").unwrap_err();
    assert!(err.0.contains("at position 20"), "{}", err.0);
    assert!(parse("").is_err());
    assert!(parse("()").is_err());
    assert!(parse("Alias 'a'").is_err());
    assert!(parse("WhenChangedUTC -like '2024*'").is_err());
    assert!(parse("IsExchangeCloudManaged -gt $true").is_err());
}
