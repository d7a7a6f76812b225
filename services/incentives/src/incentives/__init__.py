"""Incentives (Geel regional incentive platform): campaigns, coins, merchant redemption and settlement."""
