//! Reading from AD: lookups by anchor, paged searches, the rootDSE.

use crate::config::AdConfig;
use crate::entry::{read_attributes, AdUser, RawEntry};
use crate::error::AdError;
use crate::ids;
use crate::pool::Pool;
use crate::scan::{LearnedBounds, ScanParts, PARTS_PER_STREAM};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapError, Scope};
use std::sync::Arc;
use writeback_core::ManagedAttribute;

/// How to find a user; every variant is escaped before it reaches a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserKey {
    ObjectGuid([u8; 16]),
    ConsistencyGuid(Vec<u8>),
    /// `S-1-5-21-...` text form.
    Sid(String),
    /// A DN; a hint only, the caller verifies what it finds.
    Dn(String),
}

/// What the rootDSE says about the DC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootDse {
    pub highest_committed_usn: u64,
    pub default_naming_context: String,
    pub ds_service_name: String,
}

/// A connection to one domain controller. Clones share the connection pool (a cycle's
/// apply runs on a task of its own).
#[derive(Clone)]
pub struct AdDirectory {
    pub(crate) config: Arc<AdConfig>,
    pub(crate) pool: Arc<Pool>,
}

impl AdDirectory {
    /// Connects and binds (so a bad URL, certificate or password fails here, clearly).
    pub async fn connect(config: AdConfig) -> Result<Self, AdError> {
        let config = Arc::new(config);
        let pool = Arc::new(Pool::open(config.clone()).await?);
        Ok(AdDirectory { config, pool })
    }

    pub fn config(&self) -> &AdConfig {
        &self.config
    }

    pub(crate) async fn ldap(&self) -> Result<Ldap, AdError> {
        self.pool.get().await
    }

    /// The rootDSE: also the health check (Samba answers WhoAmI wrongly, a rootDSE read is
    /// reliable).
    pub async fn root_dse(&self) -> Result<RootDse, AdError> {
        let entries = self
            .search_raw(
                "",
                Scope::Base,
                "(objectClass=*)",
                &["highestCommittedUSN", "defaultNamingContext", "dsServiceName"],
            )
            .await?;
        let entry = entries
            .into_iter()
            .next()
            .ok_or_else(|| AdError::MalformedEntry("empty rootDSE".into()))?;
        let first = |name: &str| entry.text(name).first().cloned().unwrap_or_default();
        let usn = first("highestCommittedUSN");
        Ok(RootDse {
            highest_committed_usn: usn.trim().parse().map_err(|_| {
                AdError::MalformedEntry(format!("highestCommittedUSN {usn:?} is not a number"))
            })?,
            default_naming_context: first("defaultNamingContext"),
            ds_service_name: first("dsServiceName"),
        })
    }

    /// The managed attributes the DC's schema does not define (empty when the Exchange
    /// schema extension is in place).
    pub async fn missing_schema_attributes(&self) -> Result<Vec<&'static str>, AdError> {
        let root = self
            .search_raw("", Scope::Base, "(objectClass=*)", &["schemaNamingContext"])
            .await?;
        let schema_nc = root
            .first()
            .and_then(|e| e.text("schemaNamingContext").first().cloned())
            .ok_or_else(|| AdError::MalformedEntry("rootDSE has no schemaNamingContext".into()))?;
        let mut filter = String::from("(&(objectClass=attributeSchema)(|");
        for attr in ManagedAttribute::ALL {
            filter.push_str(&format!("(lDAPDisplayName={})", ids::escape_filter_str(attr.ldap_name())));
        }
        filter.push_str("))");
        let found = self
            .search_raw(&schema_nc, Scope::OneLevel, &filter, &["lDAPDisplayName"])
            .await?;
        let present: Vec<String> = found
            .iter()
            .filter_map(|e| e.text("lDAPDisplayName").first().map(|n| n.to_ascii_lowercase()))
            .collect();
        Ok(ManagedAttribute::ALL
            .iter()
            .map(|a| a.ldap_name())
            .filter(|name| !present.contains(&name.to_ascii_lowercase()))
            .collect())
    }

    /// One user under `base` and the attributes the bound account may write on it
    /// (`allowedAttributesEffective`, constructed by the DC from the object's ACL): the cheap
    /// permission check `writeback check` makes before anything is written.
    pub async fn sample_writable_attributes(
        &self,
        base: &str,
    ) -> Result<Option<(String, Vec<String>)>, AdError> {
        let mut ldap = self.ldap().await?;
        let result = ldap
            .with_timeout(self.config.timeout)
            .with_search_options(ldap3::SearchOptions::new().sizelimit(1))
            .search(
                base,
                Scope::Subtree,
                "(&(objectCategory=person)(objectClass=user)(!(isCriticalSystemObject=TRUE)))",
                &["allowedAttributesEffective"],
            )
            .await
            .map_err(|e| transport("search", e))?;
        // 4 = sizeLimitExceeded: expected, one entry was all that was asked for.
        if result.1.rc != 0 && result.1.rc != 4 {
            return Err(AdError::Ldap { operation: "search", code: result.1.rc, message: result.1.text });
        }
        let Some(entry) = result.0.into_iter().next() else { return Ok(None) };
        let entry = RawEntry::parse(entry)?;
        let attrs = entry.text("allowedAttributesEffective").to_vec();
        Ok(Some((entry.dn, attrs)))
    }

    /// Every object matching the key, with its managed attributes. Zero, one or several:
    /// the caller decides what a count other than one means.
    pub async fn find(&self, key: &UserKey) -> Result<Vec<AdUser>, AdError> {
        self.find_in(key, &self.config.base_dn).await
    }

    /// Like [`AdDirectory::find`], searching only under `search_base` (a DN hint is looked
    /// up wherever it points). Searching the configured scope rather than the whole domain
    /// matters: mS-DS-ConsistencyGuid is not indexed everywhere.
    pub async fn find_in(&self, key: &UserKey, search_base: &str) -> Result<Vec<AdUser>, AdError> {
        let subtree = search_base.to_owned();
        let (base, scope, filter) = match key {
            UserKey::ObjectGuid(bytes) => (
                subtree,
                Scope::Subtree,
                format!("(objectGUID={})", ids::escape_filter_bytes(bytes)),
            ),
            UserKey::ConsistencyGuid(bytes) => {
                if bytes.is_empty() {
                    return Err(AdError::InvalidKey("empty mS-DS-ConsistencyGuid".into()));
                }
                (
                    subtree,
                    Scope::Subtree,
                    format!("(mS-DS-ConsistencyGuid={})", ids::escape_filter_bytes(bytes)),
                )
            }
            UserKey::Sid(text) => (
                subtree,
                Scope::Subtree,
                format!("(objectSid={})", ids::escape_filter_bytes(&ids::sid_from_string(text)?)),
            ),
            UserKey::Dn(dn) => {
                validate_dn_hint(dn)?;
                (dn.clone(), Scope::Base, "(objectClass=*)".to_owned())
            }
        };
        let raw = match self.search_raw(&base, scope, &filter, &read_attributes()).await {
            Err(AdError::Ldap { code: 32, .. }) => return Ok(Vec::new()),
            Err(AdError::Ldap { code: 34, .. }) => {
                return Err(AdError::InvalidKey(format!("{base:?} is not a valid DN")))
            }
            other => other?,
        };
        let mut users = Vec::with_capacity(raw.len());
        for entry in raw {
            users.push(self.complete_ranges(entry).await?.into_user()?);
        }
        Ok(users)
    }

    /// Reads one object by DN (or `<GUID=...>`), `None` if it does not exist.
    pub async fn read(&self, dn: &str) -> Result<Option<AdUser>, AdError> {
        let raw = match self
            .search_raw(dn, Scope::Base, "(objectClass=*)", &read_attributes())
            .await
        {
            Err(AdError::Ldap { code: 32, .. }) => return Ok(None),
            other => other?,
        };
        match raw.into_iter().next() {
            Some(entry) => Ok(Some(self.complete_ranges(entry).await?.into_user()?)),
            None => Ok(None),
        }
    }

    /// `filter` split into the disjoint parts of a scope scan (by uSNCreated, at `learned`
    /// bounds when they fit this DC: see [`crate::scan`]): [`PARTS_PER_STREAM`] for each of the
    /// `scan_streams` searches it runs at once; `filter` alone when that is 1.
    pub async fn scan_parts(&self, filter: &str, learned: Option<&LearnedBounds>) -> Result<ScanParts, AdError> {
        let streams = self.config.scan_streams;
        if streams <= 1 {
            return Ok(ScanParts::whole(filter));
        }
        let dse = self.root_dse().await?;
        let parts = streams * PARTS_PER_STREAM;
        Ok(ScanParts::new(filter, parts, &dse.ds_service_name, dse.highest_committed_usn, learned))
    }

    /// Streams every user under `base` matching `filter` (already escaped by the caller),
    /// a page at a time, so memory stays flat whatever the directory's size.
    /// `visit`'s own error (e.g. a store it writes to) ends the search and is returned.
    pub async fn for_each_user<F, E>(&self, base: &str, filter: &str, visit: F) -> Result<u64, E>
    where
        F: FnMut(AdUser) -> Result<(), E>,
        E: From<AdError>,
    {
        let ldap = self.ldap().await?;
        self.stream_users(ldap, base, filter, visit).await
    }

    /// [`AdDirectory::for_each_user`] over reader connection `reader` (modulo their number):
    /// a scan's searches running at once each keep a connection of their own.
    pub async fn for_each_user_on<F, E>(&self, reader: usize, base: &str, filter: &str, visit: F) -> Result<u64, E>
    where
        F: FnMut(AdUser) -> Result<(), E>,
        E: From<AdError>,
    {
        let ldap = self.pool.reader(reader).await?;
        self.stream_users(ldap, base, filter, visit).await
    }

    async fn stream_users<F, E>(&self, mut ldap: Ldap, base: &str, filter: &str, mut visit: F) -> Result<u64, E>
    where
        F: FnMut(AdUser) -> Result<(), E>,
        E: From<AdError>,
    {
        let attrs = read_attributes();
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(self.config.page_size)),
        ];
        let mut stream = ldap
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
            .await
            .map_err(|e| E::from(transport("search", e)))?;
        let mut count = 0u64;
        loop {
            let next = stream.next().await.map_err(|e| E::from(transport("search", e)))?;
            let Some(entry) = next else { break };
            let raw = RawEntry::parse(entry).map_err(E::from)?;
            let raw = self.complete_ranges(raw).await.map_err(E::from)?;
            visit(raw.into_user().map_err(E::from)?)?;
            count += 1;
        }
        let result = stream.finish().await;
        if result.rc != 0 {
            return Err(E::from(AdError::Ldap { operation: "search", code: result.rc, message: result.text }));
        }
        Ok(count)
    }

    pub(crate) async fn search_raw(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<RawEntry>, AdError> {
        let mut ldap = self.ldap().await?;
        let result = ldap
            .with_timeout(self.config.timeout)
            .search(base, scope, filter, attrs)
            .await
            .map_err(|e| transport("search", e))?;
        let (entries, status) = (result.0, result.1);
        if status.rc != 0 {
            return Err(AdError::Ldap {
                operation: "search",
                code: status.rc,
                message: status.text,
            });
        }
        entries.into_iter().map(RawEntry::parse).collect()
    }

    /// AD returns very large multi-valued attributes in ranges (`proxyAddresses;range=0-1499`);
    /// fetch the rest so nothing is silently truncated.
    async fn complete_ranges(&self, mut entry: RawEntry) -> Result<RawEntry, AdError> {
        for (base_name, key, mut end) in entry.ranged_attributes() {
            let first = entry.remove(&key);
            entry.merge_range(&base_name, first);
            // Bounded: a DC that keeps answering with ranges cannot loop us forever.
            for _ in 0..10_000 {
                let Some(last) = end else { break };
                let request = format!("{base_name};range={}-*", last + 1);
                let more = self
                    .search_raw(&entry.dn, Scope::Base, "(objectClass=*)", &[request.as_str()])
                    .await?;
                let Some(next) = more.into_iter().next() else { break };
                let ranged = next.ranged_attributes();
                let Some((_, next_key, next_end)) =
                    ranged.into_iter().find(|(b, _, _)| b.eq_ignore_ascii_case(&base_name))
                else {
                    break;
                };
                let mut next = next;
                entry.merge_range(&base_name, next.remove(&next_key));
                end = next_end;
            }
        }
        Ok(entry)
    }
}

/// A DN hint comes from the cloud: refuse the extended forms (`<GUID=...>`, `<SID=...>`)
/// that would turn a hint into a lookup by another key, and anything that is not a DN.
fn validate_dn_hint(dn: &str) -> Result<(), AdError> {
    let trimmed = dn.trim();
    if trimmed.is_empty() || trimmed.starts_with('<') || !trimmed.contains('=') || dn.contains('\0') {
        return Err(AdError::InvalidKey(format!("{dn:?} is not a distinguished name")));
    }
    Ok(())
}

pub(crate) fn transport(operation: &'static str, error: LdapError) -> AdError {
    AdError::Transport {
        operation,
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::validate_dn_hint;

    #[test]
    fn dn_hints_in_extended_form_are_refused() {
        assert!(validate_dn_hint("CN=A,DC=x").is_ok());
        assert!(validate_dn_hint("<GUID=00112233-4455-6677-8899-aabbccddeeff>").is_err());
        assert!(validate_dn_hint("").is_err());
        assert!(validate_dn_hint("nonsense").is_err());
    }
}
