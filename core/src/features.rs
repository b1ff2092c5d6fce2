//! Upstream's feature gates (`--feature-gates`, all alpha and off by default in 1.7):
//! `CPUStartupBoost`, `InPlace` and `PerVPAConfig`, shared by the three binaries.

/// The feature gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeatureGates {
    /// `CPUStartupBoost`: boost CPU at admission, unboost in the updater.
    pub cpu_startup_boost: bool,
    /// `InPlace`: the `InPlace` update mode.
    pub in_place: bool,
    /// `PerVPAConfig`: per-VPA recommender and updater settings.
    pub per_vpa_config: bool,
}

impl FeatureGates {
    /// Parses `--feature-gates` (`Name=bool,...`); an unknown gate is an error, as upstream.
    pub fn parse(s: &str) -> Result<FeatureGates, String> {
        let mut g = FeatureGates::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("--feature-gates: {part:?} is not Name=true|false"))?;
            let v: bool = value
                .trim()
                .parse()
                .map_err(|_| format!("--feature-gates: {name}={value:?} is not true or false"))?;
            match name.trim() {
                "CPUStartupBoost" => g.cpu_startup_boost = v,
                "InPlace" => g.in_place = v,
                "PerVPAConfig" => g.per_vpa_config = v,
                other => return Err(format!("--feature-gates: unknown feature gate {other:?}")),
            }
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn gates_parse_like_upstream() {
        assert_eq!(FeatureGates::parse("").unwrap(), FeatureGates::default());
        let g =
            FeatureGates::parse("CPUStartupBoost=true, InPlace=false,PerVPAConfig=true").unwrap();
        assert!(g.cpu_startup_boost && !g.in_place && g.per_vpa_config);
        assert!(
            FeatureGates::parse("InPlaceOrRecreate=true")
                .unwrap_err()
                .contains("unknown")
        );
        assert!(
            FeatureGates::parse("InPlace")
                .unwrap_err()
                .contains("Name=true|false")
        );
        assert!(
            FeatureGates::parse("InPlace=yes")
                .unwrap_err()
                .contains("not true or false")
        );
    }
}
