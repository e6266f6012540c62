//! From Exchange Online's `RecipientTypeDetails` to the two AD attributes that describe a
//! remote (cloud) mailbox of a synced user.
//!
//! In AD, a cloud mailbox of a synced user is a *remote* mailbox: a cloud `UserMailbox` is
//! written as `RemoteUserMailbox`, a `SharedMailbox` as `RemoteSharedMailbox`, and so on.
//! The `Remote*` names map to themselves. Anything else (including `MailUser`, which has no
//! mailbox) is refused for that mailbox: writing a guessed type would mislead Exchange's
//! on-premises tools and, through Connect Sync, the cloud's licensing decisions.

/// A remote mailbox type as stored on the on-premises user object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemoteRecipientType {
    RemoteUserMailbox,
    RemoteSharedMailbox,
    RemoteRoomMailbox,
    RemoteEquipmentMailbox,
}

impl RemoteRecipientType {
    pub const ALL: [RemoteRecipientType; 4] = [
        RemoteRecipientType::RemoteUserMailbox,
        RemoteRecipientType::RemoteSharedMailbox,
        RemoteRecipientType::RemoteRoomMailbox,
        RemoteRecipientType::RemoteEquipmentMailbox,
    ];

    /// Maps an Exchange `RecipientTypeDetails` name (the cloud's, or already the remote
    /// one). Names are matched ignoring ASCII case; nothing else is guessed.
    pub fn from_exchange_name(name: &str) -> Option<Self> {
        use RemoteRecipientType::*;
        let known: [(&str, RemoteRecipientType); 8] = [
            ("UserMailbox", RemoteUserMailbox),
            ("RemoteUserMailbox", RemoteUserMailbox),
            ("SharedMailbox", RemoteSharedMailbox),
            ("RemoteSharedMailbox", RemoteSharedMailbox),
            ("RoomMailbox", RemoteRoomMailbox),
            ("RemoteRoomMailbox", RemoteRoomMailbox),
            ("EquipmentMailbox", RemoteEquipmentMailbox),
            ("RemoteEquipmentMailbox", RemoteEquipmentMailbox),
        ];
        known
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, t)| *t)
    }

    pub fn name(self) -> &'static str {
        match self {
            RemoteRecipientType::RemoteUserMailbox => "RemoteUserMailbox",
            RemoteRecipientType::RemoteSharedMailbox => "RemoteSharedMailbox",
            RemoteRecipientType::RemoteRoomMailbox => "RemoteRoomMailbox",
            RemoteRecipientType::RemoteEquipmentMailbox => "RemoteEquipmentMailbox",
        }
    }

    /// `msExchRecipientTypeDetails` (Large Integer). Values from the Exchange
    /// RecipientTypeDetails enumeration (RemoteUserMailbox = 0x80000000, RemoteRoomMailbox =
    /// 0x200000000, RemoteEquipmentMailbox = 0x400000000, RemoteSharedMailbox = 0x800000000).
    pub fn type_details(self) -> i64 {
        match self {
            RemoteRecipientType::RemoteUserMailbox => 2_147_483_648,
            RemoteRecipientType::RemoteRoomMailbox => 8_589_934_592,
            RemoteRecipientType::RemoteEquipmentMailbox => 17_179_869_184,
            RemoteRecipientType::RemoteSharedMailbox => 34_359_738_368,
        }
    }

    /// `msExchRecipientDisplayType` (Integer, signed 32-bit as AD returns it).
    ///
    /// Sources:
    /// - RemoteUserMailbox: −2147483642 (0x80000006, "SyncedMailboxUser"). Microsoft Learn,
    ///   "Prepare mailboxes for cross-forest move requests" (Exchange Server), mandatory
    ///   attributes table: "msExchRecipientDisplayType -2147483642 decimal (equivalent to
    ///   0x80000006 hex)".
    /// - RemoteRoomMailbox: −2147481850 (0x80000706, "SyncedConferenceRoomMailbox"). Same
    ///   Microsoft Learn page, resource mailbox attributes table ("If the source mailbox is a
    ///   conference room: Constant: -2147481850 decimal (equivalent to unsigned 0x80000706)");
    ///   also the Microsoft Teams Rooms hybrid deployment doc, which sets
    ///   msExchRecipientDisplayType = -2147481850 with msExchRecipientTypeDetails = 8589934592.
    /// - RemoteEquipmentMailbox: −2147481594 (0x80000806, "SyncedEquipmentMailbox"). Same
    ///   Microsoft Learn page, resource mailbox attributes table ("If the source mailbox is an
    ///   equipment mailbox: Constant: -2147481594 decimal (equivalent to unsigned 0x80000806)").
    /// - RemoteSharedMailbox: −2147483642, the same as a remote user mailbox. The Exchange
    ///   RecipientDisplayType enumeration has no "synced shared mailbox" member (the
    ///   published tables list SyncedMailboxUser, SyncedConferenceRoomMailbox,
    ///   SyncedEquipmentMailbox only; e.g. John Bai's Microsoft TechNet blog post "O365:
    ///   Exchange and AD – How msExchRecipientDisplayType and msExchangeRecipientTypeDetails
    ///   Relate to Your On-Premises", 2013-09-11, and copies of its table), and a shared
    ///   mailbox is told apart by msExchRecipientTypeDetails (34359738368) and
    ///   msExchRemoteRecipientType (100 = Migrated|SharedMailbox). Remote shared mailboxes
    ///   created by `Set-RemoteMailbox -Type Shared` carry -2147483642 (as observed and
    ///   documented in public admin scripts); no Microsoft page states it in a table, so
    ///   this one is the least directly sourced of the four.
    pub fn display_type(self) -> i32 {
        match self {
            RemoteRecipientType::RemoteUserMailbox | RemoteRecipientType::RemoteSharedMailbox => {
                -2_147_483_642
            }
            RemoteRecipientType::RemoteRoomMailbox => -2_147_481_850,
            RemoteRecipientType::RemoteEquipmentMailbox => -2_147_481_594,
        }
    }

    /// [`Self::type_details`] as the decimal text AD stores, without formatting per call.
    pub(crate) fn type_details_text(self) -> &'static str {
        match self {
            RemoteRecipientType::RemoteUserMailbox => "2147483648",
            RemoteRecipientType::RemoteRoomMailbox => "8589934592",
            RemoteRecipientType::RemoteEquipmentMailbox => "17179869184",
            RemoteRecipientType::RemoteSharedMailbox => "34359738368",
        }
    }

    /// [`Self::display_type`] as the decimal text AD stores.
    pub(crate) fn display_type_text(self) -> &'static str {
        match self {
            RemoteRecipientType::RemoteUserMailbox | RemoteRecipientType::RemoteSharedMailbox => {
                "-2147483642"
            }
            RemoteRecipientType::RemoteRoomMailbox => "-2147481850",
            RemoteRecipientType::RemoteEquipmentMailbox => "-2147481594",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_names_map_to_remote_types_and_remote_names_to_themselves() {
        use RemoteRecipientType::*;
        assert_eq!(
            RemoteRecipientType::from_exchange_name("UserMailbox"),
            Some(RemoteUserMailbox)
        );
        assert_eq!(
            RemoteRecipientType::from_exchange_name("SharedMailbox"),
            Some(RemoteSharedMailbox)
        );
        assert_eq!(
            RemoteRecipientType::from_exchange_name("RoomMailbox"),
            Some(RemoteRoomMailbox)
        );
        assert_eq!(
            RemoteRecipientType::from_exchange_name("EquipmentMailbox"),
            Some(RemoteEquipmentMailbox)
        );
        for t in RemoteRecipientType::ALL {
            assert_eq!(RemoteRecipientType::from_exchange_name(t.name()), Some(t));
        }
        assert_eq!(
            RemoteRecipientType::from_exchange_name("usermailbox"),
            Some(RemoteUserMailbox)
        );
    }

    #[test]
    fn non_mailboxes_and_unknown_names_are_not_mapped() {
        for name in [
            "MailUser",
            "MailContact",
            "LinkedMailbox",
            "GroupMailbox",
            "",
            "User Mailbox",
        ] {
            assert_eq!(
                RemoteRecipientType::from_exchange_name(name),
                None,
                "{name}"
            );
        }
    }

    #[test]
    fn numbers_match_the_published_values() {
        use RemoteRecipientType::*;
        assert_eq!(RemoteUserMailbox.type_details(), 0x8000_0000);
        assert_eq!(RemoteRoomMailbox.type_details(), 0x2_0000_0000);
        assert_eq!(RemoteEquipmentMailbox.type_details(), 0x4_0000_0000);
        assert_eq!(RemoteSharedMailbox.type_details(), 0x8_0000_0000);
        // The display types are the signed reading of 0x800000xx words.
        assert_eq!(RemoteUserMailbox.display_type() as u32, 0x8000_0006);
        assert_eq!(RemoteRoomMailbox.display_type() as u32, 0x8000_0706);
        assert_eq!(RemoteEquipmentMailbox.display_type() as u32, 0x8000_0806);
        assert_eq!(
            RemoteSharedMailbox.display_type(),
            RemoteUserMailbox.display_type()
        );
    }

    #[test]
    fn text_forms_are_the_numbers_in_decimal() {
        for t in RemoteRecipientType::ALL {
            assert_eq!(t.type_details_text(), t.type_details().to_string(), "{t:?}");
            assert_eq!(t.display_type_text(), t.display_type().to_string(), "{t:?}");
        }
    }
}
