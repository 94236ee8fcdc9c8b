import click


@click.command()
def batch():
    """placeholder"""
